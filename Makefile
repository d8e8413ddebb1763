# The one test command: make test (vet, staticcheck, gofmt, unit + fuzz seeds + end-to-end, all with -race).
GO ?= go
PKGS := ./...

.PHONY: test lint unit build bench fuzz clean

test: lint unit

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint:
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) -checks all,-ST1000,-ST1003,-ST1020,-ST1021,-ST1022 $(PKGS)
	@out="$$(gofmt -l .)"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

unit:
	$(GO) test -race -count=1 -timeout 10m $(PKGS)

build:
	$(GO) build -trimpath -o bin/breakwater ./cmd/breakwater

# Go benchmarks of the hot path (see docs/performance.md); bench/run.sh compares with nginx.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

# Short fuzzing sessions of the parsers that see client input (and of the config loader and limiter).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzCanonical -fuzztime 30s ./internal/pathcanon/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./internal/config/
	$(GO) test -run '^$$' -fuzz FuzzMatch -fuzztime 30s ./internal/router/
	$(GO) test -run '^$$' -fuzz FuzzDecide -fuzztime 30s ./internal/ratelimit/

clean:
	rm -rf bin

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

# Short fuzzing sessions of every fuzz target (every parser that sees client
# input, and the config loader and limiter): FUZZTIME each, found with go test -list.
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./internal/...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

clean:
	rm -rf bin

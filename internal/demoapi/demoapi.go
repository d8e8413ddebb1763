// Package demoapi is the small orders API that `breakwater demo` puts behind
// the gateway. It deliberately behaves like a careless backend — it
// announces its software and leaks a stack trace on errors — so the demo
// shows what the gateway removes.
package demoapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

type order struct {
	ID       string    `json:"id"`
	Item     string    `json:"item"`
	Quantity int       `json:"quantity"`
	Consumer string    `json:"consumer,omitempty"`
	Created  time.Time `json:"created"`
}

// API is an in-memory orders service.
type API struct {
	mu     sync.Mutex
	orders map[string]order
	next   int
}

// New returns the API with a few orders in it.
func New() *API {
	a := &API{orders: map[string]order{}, next: 1}
	for _, it := range []string{"anchor chain", "tide table", "harbour map"} {
		a.add(it, 1, "")
	}
	return a
}

func (a *API) add(item string, qty int, consumer string) order {
	id := "ord-" + strconv.Itoa(a.next)
	a.next++
	o := order{ID: id, Item: item, Quantity: qty, Consumer: consumer, Created: time.Now().UTC().Truncate(time.Second)}
	a.orders[id] = o
	return o
}

// Handler serves the API.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /v1/orders", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		list := make([]order, 0, len(a.orders))
		for _, o := range a.orders {
			list = append(list, o)
		}
		a.mu.Unlock()
		sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
		writeJSON(w, http.StatusOK, map[string]any{"orders": list, "seen_consumer": r.Header.Get("X-Consumer-Id")})
	})
	mux.HandleFunc("GET /v1/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "crash" {
			// A careless backend: the gateway masks this body.
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, "panic: runtime error: index out of range\n\ngoroutine 1 [running]:\nmain.handler(0xc000012345)\n\t/srv/orders/internal/db.go:42 +0x1d\nconnecting to 10.0.3.7:5432 as orders_rw\n")
			return
		}
		a.mu.Lock()
		o, ok := a.orders[r.PathValue("id")]
		a.mu.Unlock()
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such order"})
			return
		}
		writeJSON(w, http.StatusOK, o)
	})
	mux.HandleFunc("POST /v1/orders", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Item     string `json:"item"`
			Quantity int    `json:"quantity"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil || in.Item == "" || in.Quantity < 1 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want {\"item\": string, \"quantity\": integer ≥ 1}"})
			return
		}
		a.mu.Lock()
		if len(a.orders) >= 1000 {
			a.mu.Unlock()
			writeJSON(w, http.StatusInsufficientStorage, map[string]string{"error": "demo store full"})
			return
		}
		o := a.add(in.Item, in.Quantity, r.Header.Get("X-Consumer-Id"))
		a.mu.Unlock()
		writeJSON(w, http.StatusCreated, o)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "orders-backend/0.9 (Ubuntu)")
		w.Header().Set("X-Powered-By", "Express")
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

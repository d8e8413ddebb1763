package problem

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/breakwater/breakwater/internal/reqctx"
)

func TestWrite(t *testing.T) {
	for _, status := range []int{400, 401, 403, 404, 405, 413, 414, 429, 431, 500, 502, 503, 504, 599} {
		r := reqctx.With(httptest.NewRequest("GET", "/", nil), &reqctx.State{RequestID: "RID"})
		w := httptest.NewRecorder()
		w.Header().Set("Content-Encoding", "gzip") // left over from an upstream: must go
		Write(w, r, status)
		var doc map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
			t.Fatalf("%d: not JSON: %s", status, w.Body)
		}
		if w.Code != status || doc["status"] != float64(status) || doc["type"] != "about:blank" || doc["request_id"] != "RID" || doc["title"] == "" {
			t.Errorf("%d: %v", status, doc)
		}
		h := w.Header()
		if h.Get("Content-Type") != ContentType || h.Get("Cache-Control") != "no-store" || h.Get("Content-Encoding") != "" {
			t.Errorf("%d: headers %v", status, h)
		}
	}
}

func TestDetailIsEscaped(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	w := httptest.NewRecorder()
	WriteDetail(w, r, http.StatusBadRequest, `field "a": must be </script> ≤ 3`)
	var doc map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("not JSON: %s", w.Body)
	}
	if doc["detail"] != `field "a": must be </script> ≤ 3` {
		t.Fatalf("detail %q", doc["detail"])
	}
}

func TestUnauthorizedIsUniform(t *testing.T) {
	w1, w2 := httptest.NewRecorder(), httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/", nil)
	Unauthorized(w1, r, `APIKey realm="x"`)
	Unauthorized(w2, r, `APIKey realm="x"`)
	if w1.Body.String() != w2.Body.String() || w1.Header().Get("WWW-Authenticate") != `APIKey realm="x"` || w1.Code != 401 {
		t.Fatal("401 not uniform")
	}
	if string(Body("RID", 401)) != `{"type":"about:blank","title":"Unauthorized","status":401,"request_id":"RID"}` {
		t.Fatalf("body %s", Body("RID", 401))
	}
}

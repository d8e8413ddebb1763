package proxy

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/config"
)

// upgradeServer is a raw upstream that switches to an echo protocol: it
// hijacks the connection, answers 101 and echoes every byte back.
func upgradeServer(t *testing.T, seen chan<- http.Header) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen != nil {
			seen <- r.Header.Clone()
		}
		if !strings.EqualFold(r.Header.Get("Upgrade"), "echo") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\nServer: leaky/1.0\r\n\r\n")
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw) // echo until the client closes
	}))
	t.Cleanup(s.Close)
	return s
}

func TestUpgradePassesThrough(t *testing.T) {
	seen := make(chan http.Header, 1)
	up := upgradeServer(t, seen)
	// A short timeout: the upgraded connection must outlive it.
	u := newUpstream(t, config.Upstream{Targets: []string{up.URL}, Timeout: dur(100 * time.Millisecond)}, Options{})
	fs := front(t, u, 0)

	conn, err := net.Dial("tcp", strings.TrimPrefix(fs.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	_, err = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: api.example.com\r\nConnection: Upgrade\r\nUpgrade: echo\r\n"+
		"X-Consumer-Id: admin\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", res.StatusCode)
	}
	h := <-seen
	if h.Get("X-Request-Id") != testRequestID || h.Get("X-Consumer-Id") != "" || h.Get("X-Forwarded-For") != testPeer.String() {
		t.Errorf("upgrade request headers not rewritten: %v", h)
	}

	echo := func(msg string) {
		t.Helper()
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil {
			t.Fatalf("reading echo: %v", err)
		}
		if string(buf) != msg {
			t.Fatalf("echo %q, want %q", buf, msg)
		}
	}
	echo("hello")
	time.Sleep(300 * time.Millisecond) // three times the upstream timeout
	echo("still here")
}

func TestStreamLargeRequestBody(t *testing.T) {
	const size = 50 << 20
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	}))
	t.Cleanup(up.Close)
	u := newUpstream(t, config.Upstream{Targets: []string{up.URL}, Timeout: dur(2 * time.Minute)}, Options{})
	fs := front(t, u, 0)

	want := sha256.New()
	pr, pw := io.Pipe()
	go func() {
		chunk := make([]byte, 64<<10)
		for i := 0; i < size/len(chunk); i++ {
			for j := range chunk {
				chunk[j] = byte(i + j)
			}
			want.Write(chunk)
			if _, err := pw.Write(chunk); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.Close()
	}()

	alloc := allocatedDuring(t, func() {
		req, _ := http.NewRequest(http.MethodPost, fs.URL+"/upload", pr)
		req.ContentLength = -1 // streamed: chunked
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if got, wantBody := string(body), fmt.Sprintf("%d %x", size, want.Sum(nil)); got != wantBody {
			t.Fatalf("upstream got %q, want %q", got, wantBody)
		}
	})
	// Client, front server, proxy and upstream together: nothing near the
	// 50 MiB a buffered body would take.
	if alloc > 16<<20 {
		t.Errorf("allocated %d MiB streaming a 50 MiB request", alloc>>20)
	}
	t.Logf("allocated %d KiB streaming a 50 MiB request", alloc>>10)
}

func TestStreamLargeResponseBody(t *testing.T) {
	const size = 50 << 20
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for i := 0; i < size/len(chunk); i++ {
			for j := range chunk {
				chunk[j] = byte(i * j)
			}
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	u := newUpstream(t, config.Upstream{Targets: []string{up.URL}, Timeout: dur(2 * time.Minute)}, Options{})
	fs := front(t, u, 0)

	want := sha256.New()
	chunk := make([]byte, 64<<10)
	for i := 0; i < size/len(chunk); i++ {
		for j := range chunk {
			chunk[j] = byte(i * j)
		}
		want.Write(chunk)
	}
	alloc := allocatedDuring(t, func() {
		res, err := http.Get(fs.URL + "/download")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		h := sha256.New()
		n, err := io.Copy(h, res.Body)
		if err != nil || n != size {
			t.Fatalf("read %d bytes, err %v", n, err)
		}
		if hex.EncodeToString(h.Sum(nil)) != hex.EncodeToString(want.Sum(nil)) {
			t.Fatal("body corrupted")
		}
	})
	if alloc > 16<<20 {
		t.Errorf("allocated %d MiB streaming a 50 MiB response", alloc>>20)
	}
	t.Logf("allocated %d KiB streaming a 50 MiB response", alloc>>10)
}

// allocatedDuring returns the bytes allocated by the whole process while f
// runs.
func allocatedDuring(t *testing.T, f func()) uint64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestStreamingIsNotBuffered(t *testing.T) {
	// The upstream sends a first part and waits until the client has it:
	// if the proxy buffered the response, this would never finish.
	clientGotFirst := make(chan struct{})
	firstReceived := make(chan struct{}) // the upstream got the first part of the request
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, buf); err != nil || string(buf) != "first" {
			t.Errorf("first request part: %q %v", buf, err)
			return
		}
		close(firstReceived)
		rest, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, "first")
		http.NewResponseController(w).Flush()
		select {
		case <-clientGotFirst:
		case <-time.After(20 * time.Second):
			t.Error("client never got the first part of the response")
		}
		_, _ = io.WriteString(w, "|"+string(rest))
	}))
	t.Cleanup(up.Close)
	u := newUpstream(t, config.Upstream{Targets: []string{up.URL}}, Options{})
	fs := front(t, u, 0)

	pr, pw := io.Pipe()
	go func() {
		_, _ = io.WriteString(pw, "first")
		select {
		case <-firstReceived:
		case <-time.After(20 * time.Second):
			t.Error("upstream never got the first part of the request")
		}
		_, _ = io.WriteString(pw, "second")
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, fs.URL+"/duplex", pr)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(res.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("first response part %q, %v", buf, err)
	}
	close(clientGotFirst)
	rest, _ := io.ReadAll(res.Body)
	if string(rest) != "|second" {
		t.Fatalf("rest %q", rest)
	}
}

func TestEventStreamFlushedAndNotIdleBounded(t *testing.T) {
	next := make(chan string)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		http.NewResponseController(w).Flush() // headers now
		for {
			select {
			case msg := <-next:
				_, _ = io.WriteString(w, "data: "+msg+"\n\n")
				http.NewResponseController(w).Flush()
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	u := newUpstream(t, config.Upstream{Targets: []string{up.URL}, Timeout: dur(100 * time.Millisecond)}, Options{})
	fs := front(t, u, 0)
	res, err := http.Get(fs.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	for i, msg := range []string{"one", "two"} {
		if i == 1 {
			time.Sleep(300 * time.Millisecond) // a silence longer than the timeout
		}
		next <- msg
		line, err := br.ReadString('\n')
		if err != nil || line != "data: "+msg+"\n" {
			t.Fatalf("event %q, %v", line, err)
		}
		_, _ = br.ReadString('\n')
	}
}

func TestStalledBodyIsCutOff(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "partial") // chunked: the proxy flushes it on
		http.NewResponseController(w).Flush()
		select { // stall
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(up.Close)
	u := newUpstream(t, config.Upstream{Targets: []string{up.URL}, Timeout: dur(150 * time.Millisecond)}, Options{})
	fs := front(t, u, 0)
	start := time.Now()
	res, err := http.Get(fs.URL + "/stall")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(res.Body, buf); err != nil || string(buf) != "partial" {
		t.Fatalf("first part %q, %v", buf, err)
	}
	rest, err := io.ReadAll(res.Body)
	if err == nil {
		t.Fatalf("stalled body ended cleanly: %q", rest)
	}
	if el := time.Since(start); el < 150*time.Millisecond || el > 10*time.Second {
		t.Errorf("cut off after %v", el)
	}
}

func TestSlowSteadyBodyOutlivesTimeout(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tick := time.NewTicker(30 * time.Millisecond)
		defer tick.Stop()
		for i := range 20 { // 600 ms in all, never silent for long
			<-tick.C
			fmt.Fprintf(w, "%d;", i)
			http.NewResponseController(w).Flush()
		}
	}))
	t.Cleanup(up.Close)
	u := newUpstream(t, config.Upstream{Targets: []string{up.URL}, Timeout: dur(300 * time.Millisecond)}, Options{})
	fs := front(t, u, 0)
	res, err := http.Get(fs.URL + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || string(body) != "0;1;2;3;4;5;6;7;8;9;10;11;12;13;14;15;16;17;18;19;" {
		t.Fatalf("body %q, %v", body, err)
	}
}

package inproc

import (
	"bytes"
	"crypto/x509"
	"errors"
	"net/http"
	"strconv"
	"testing"

	"github.com/fleetsim/fleetsim/agent"
)

// TestServeReadsIntoTheDevicesBuffer: bodies written in pieces, with and
// without Content-Length, land after the headers in the caller's buffer;
// one that does not fit is ErrResponseTooLarge.
func TestServeReadsIntoTheDevicesBuffer(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 64) // 1 KiB
	handler := func(pieces int, length bool) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if length {
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			step := len(body) / pieces
			for i := 0; i < len(body); i += step {
				w.Write(body[i:min(i+step, len(body))])
			}
		})
	}
	for _, c := range []struct {
		name    string
		pieces  int
		length  bool
		bufSize int
		tooBig  bool
	}{
		{"one write", 1, true, 4096, false},
		{"many writes", 16, false, 4096, false},
		// The headers and the body fit exactly, but not the body after the
		// slack: it takes the slow path.
		{"tight buffer", 4, true, 1024 + 88, false},
		{"too small", 4, true, 1000, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := &Server{Devices: handler(c.pieces, c.length)}
			buf := make([]byte, c.bufSize)
			resp, sent, received, err := srv.Serve(agent.Gateway, &x509.Certificate{}, &agent.Request{Method: "GET", Path: "/x"}, buf)
			if c.tooBig {
				if !errors.Is(err, agent.ErrResponseTooLarge) {
					t.Fatalf("err %v, want ErrResponseTooLarge", err)
				}
				return
			}
			if err != nil || resp.Status != 200 || sent != 0 || received != resp.HeaderBytes+len(body) {
				t.Fatalf("resp %d, sent %d, received %d, err %v", resp.Status, sent, received, err)
			}
			if !bytes.Equal(resp.Body, body) || &resp.Body[0] != &buf[resp.HeaderBytes] {
				t.Fatal("the body is not the handler's, right after the headers in the caller's buffer")
			}
		})
	}
}

// BenchmarkServe is the cost the in-process path adds to a request: a
// handler that answers a small JSON body.
func BenchmarkServe(b *testing.B) {
	body := []byte(`{"signed":{"_type":"timestamp","version":7}}`)
	s := &Server{Devices: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})}
	req := &agent.Request{Method: "GET", Path: "/repo/timestamp.json", Header: []agent.Field{{Name: "x-ats-tags", Value: "main"}}}
	buf := make([]byte, 4096)
	peer := &x509.Certificate{}
	b.ReportAllocs()
	for range b.N {
		if _, _, _, err := s.Serve(agent.Gateway, peer, req, buf); err != nil {
			b.Fatal(err)
		}
	}
}

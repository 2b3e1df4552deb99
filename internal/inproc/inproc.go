// Package inproc calls the gateway's HTTP handlers in process with the
// agent's requests, as if they had crossed a mutual-TLS connection: the
// device's certificate is attached to the request, and the response is
// read into the device's own buffer with coreHTTP's limits.
package inproc

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"strconv"

	"github.com/fleetsim/fleetsim/agent"
)

// Server answers the agent's requests with handlers (sim.Server).
type Server struct {
	// Devices is the gateway's device API; Files serves /mcu/files (nil:
	// Devices).
	Devices, Files http.Handler
}

// Serve calls the handler for ep with req from the device whose
// certificate is peer, and reads the answer into buf. It reports the bytes
// sent (the request body) and received (status line, headers and body).
// Errors: agent.ErrResponseTooLarge when the answer does not fit buf.
func (s *Server) Serve(ep agent.Endpoint, peer *x509.Certificate, req *agent.Request, buf []byte) (agent.Response, int, int, error) {
	var body io.Reader = http.NoBody
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hreq, err := http.NewRequest(req.Method, "https://gateway"+req.Path, body)
	if err != nil {
		return agent.Response{}, 0, 0, err
	}
	hreq.ContentLength = int64(len(req.Body))
	hreq.TLS = &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{peer}}
	hreq.RemoteAddr = "192.0.2.1:40000"
	for _, f := range req.Header {
		hreq.Header.Set(f.Name, f.Value)
	}
	if req.RangeEnd > 0 {
		hreq.Header.Set("Range", "bytes="+strconv.FormatInt(req.RangeStart, 10)+"-"+strconv.FormatInt(req.RangeEnd, 10))
	}
	h := s.Devices
	if ep == agent.Files && s.Files != nil {
		h = s.Files
	}
	w := &bufWriter{buf: buf, header: http.Header{}}
	h.ServeHTTP(w, hreq)
	received := w.headerBytes() + w.n
	if w.overflow || received > len(buf) {
		return agent.Response{Status: w.status()}, len(req.Body), received, agent.ErrResponseTooLarge
	}
	return w.response(), len(req.Body), received, nil
}

// bufWriter is an http.ResponseWriter that writes the body straight into
// the device's buffer, after room for the headers: at the first Write the
// headers are final but for the Content-Length the body's size decides, so
// the body starts bodySlack bytes after their size then, and response()
// moves it down to where the headers end. A body that does not fit there
// goes to a slice of its own.
type bufWriter struct {
	buf      []byte
	header   http.Header
	code     int
	start    int    // where the body starts in buf; -1 before the first Write
	body     []byte // the body when it did not fit buf from start
	n        int
	overflow bool
}

// bodySlack is room for the Content-Length digits the body adds.
const bodySlack = 24

func (w *bufWriter) Header() http.Header { return w.header }

func (w *bufWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *bufWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.n == 0 && w.body == nil {
		w.start = w.headerBytes() + bodySlack
	}
	if w.n+len(p) > len(w.buf) {
		w.overflow = true
		w.n += len(p)
		return len(p), nil
	}
	if w.body == nil && w.start+w.n+len(p) > len(w.buf) {
		w.body = append(make([]byte, 0, w.n+len(p)), w.buf[w.start:w.start+w.n]...)
	}
	if w.body != nil {
		w.body = append(w.body, p...)
	} else {
		copy(w.buf[w.start+w.n:], p)
	}
	w.n += len(p)
	return len(p), nil
}

func (w *bufWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// headerBytes sizes the status line and headers as they would be sent.
func (w *bufWriter) headerBytes() int {
	n := len("HTTP/1.1 200 OK\r\n") + 2
	if w.header.Get("Content-Length") == "" {
		n += len("Content-Length: ") + len(strconv.Itoa(w.n)) + 2
	}
	for k, vs := range w.header {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	return n
}

func (w *bufWriter) response() agent.Response {
	hb := w.headerBytes()
	r := agent.Response{Status: w.status(), HeaderBytes: hb}
	if w.n > 0 {
		if w.body != nil {
			copy(w.buf[hb:], w.body)
		} else {
			copy(w.buf[hb:], w.buf[w.start:w.start+w.n])
		}
		r.Body = w.buf[hb : hb+w.n]
	}
	return r
}

package sim

import "time"

// Capacity models what the gateway can take: CPU cores that serve
// handshakes and requests one at a time each, and an uplink every response
// byte crosses. Work that finds every core busy queues, first come first
// served, so the fleet sees queueing delay once its load nears the
// gateway's capacity. The zero value is a gateway without limits.
type Capacity struct {
	// Cores serve in parallel (0: no CPU limit).
	Cores int
	// HandshakeCPU is a core's time for a full mutual-TLS handshake;
	// RequestCPU for one request (parsing, TLS records, the handler).
	HandshakeCPU, RequestCPU time.Duration
	// Egress is the uplink in bits per second (0: no limit).
	Egress int64
}

// DefaultCapacity is the fleetsim gateway as `make loadtest` measured it on
// a 2-core build machine (README, "Gateway load test"), taking the server
// to have had one of the two cores: 12,751 keep-alive check-in requests/s
// give 78 µs a request; 4,494/s with a full handshake per six requests give
// about 0.87 ms a handshake. Egress is a 1 Gbit/s port.
var DefaultCapacity = Capacity{Cores: 2, HandshakeCPU: 870 * time.Microsecond, RequestCPU: 78 * time.Microsecond, Egress: 1e9}

// ServerStats are the gateway's modelled load.
type ServerStats struct {
	// Busy is the CPU time used, summed over cores.
	Busy time.Duration
	// Waited is the total queueing delay; MaxWait the longest one.
	Waited, MaxWait time.Duration
	// Jobs is the handshakes and requests served.
	Jobs int64
}

// server is the state of a Capacity: when each core and the uplink are
// next free, on the kernel's clock.
type server struct {
	c      Capacity
	cores  []int64 // a min-heap of the times each core is free
	egress int64   // when the uplink has sent all queued bytes
	stats  ServerStats
}

func newServer(c Capacity) *server {
	return &server{c: c, cores: make([]int64, max(c.Cores, 0))}
}

// cpu queues a job of cost arriving at now and returns when it finishes.
func (s *server) cpu(now int64, cost time.Duration) int64 {
	s.stats.Jobs++
	if len(s.cores) == 0 || cost <= 0 {
		return now + int64(cost)
	}
	start := max(now, s.cores[0])
	wait := time.Duration(start - now)
	s.stats.Waited += wait
	s.stats.MaxWait = max(s.stats.MaxWait, wait)
	s.stats.Busy += cost
	finish := start + int64(cost)
	s.cores[0] = finish
	s.siftDown()
	return finish
}

// siftDown restores the heap after the earliest core took a job.
func (s *server) siftDown() {
	h := s.cores
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r] < h[l] {
			m = r
		}
		if h[i] <= h[m] {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// send queues n response bytes on the uplink from now and returns when
// the last leaves.
func (s *server) send(now int64, n int) int64 {
	if s.c.Egress <= 0 || n <= 0 {
		return now
	}
	s.egress = max(now, s.egress) + int64(transfer(n, s.c.Egress))
	return s.egress
}

package devicemodel

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/agent"
)

// worldAt is a Host whose clock stands where the test puts it.
type worldAt struct{ now time.Time }

func (w *worldAt) Now() time.Time                                { return w.now }
func (w *worldAt) Sleep(d time.Duration, _ <-chan struct{}) bool { w.now = w.now.Add(d); return true }
func (w *worldAt) Connect(agent.Endpoint, tls.Certificate) (agent.Conn, error) {
	return nil, errNetworkDown
}

func TestCalendarClockSkewsAndDrifts(t *testing.T) {
	made := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name  string
		skew  time.Duration
		drift float64
		after time.Duration
		want  time.Duration // the calendar clock's lead on the world's
	}{
		{"exact", 0, 0, 24 * time.Hour, 0},
		{"skewed", -time.Hour, 0, 24 * time.Hour, -time.Hour},
		{"100 ppm fast", 0, 100e-6, 24 * time.Hour, 8640 * time.Millisecond},
		{"skewed and 50 ppm slow", 2 * time.Second, -50e-6, 10 * 24 * time.Hour, 2*time.Second - 43200*time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := &worldAt{now: made}
			d := &Device{host: w, skew: c.skew, drift: c.drift, made: made}
			w.Sleep(c.after, nil)
			if got := (deviceClock{d}).Now().Sub(w.now); got != c.want {
				t.Fatalf("calendar clock leads by %v, want %v", got, c.want)
			}
		})
	}
}

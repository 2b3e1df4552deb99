package scenarios

import "math"

// Gateway is the embedded gateway's modelled capacity: what it costs to
// serve the fleet, so that queueing shows once the fleet nears it. A field
// left out (or zero) takes the figure measured on fleetsim's build machine
// (docs/scenarios.md, "The gateway's capacity").
type Gateway struct {
	// Cores serve handshakes and requests in parallel.
	Cores int `yaml:"cores" json:"cores,omitempty" jsonschema:"minimum=0"`
	// HandshakeCPU is a core's time per full mutual-TLS handshake, e.g. "870us".
	HandshakeCPU Duration `yaml:"handshake_cpu" json:"handshake_cpu,omitempty"`
	// RequestCPU is a core's time per request, e.g. "78us".
	RequestCPU Duration `yaml:"request_cpu" json:"request_cpu,omitempty"`
	// EgressMbps is the gateway's uplink in megabits per second.
	EgressMbps float64 `yaml:"egress_mbps" json:"egress_mbps,omitempty" jsonschema:"minimum=0"`
	// Unlimited models no capacity limit at all (the other fields are
	// then ignored).
	Unlimited bool `yaml:"unlimited" json:"unlimited,omitempty"`
}

func (g *Gateway) validate(c checker) *Error {
	switch {
	case g.Cores < 0:
		return c.fail("gateway.cores", "must not be negative")
	case g.HandshakeCPU < 0:
		return c.fail("gateway.handshake_cpu", "must not be negative")
	case g.RequestCPU < 0:
		return c.fail("gateway.request_cpu", "must not be negative")
	case !(g.EgressMbps >= 0) || math.IsInf(g.EgressMbps, 0):
		return c.fail("gateway.egress_mbps", "must be a finite number of megabits per second, at least 0")
	}
	return nil
}

// Package pki owns fleetsim's factory PKI: the factory CA, the gateway's
// server certificate, the operator's admin client certificate and the device
// certificates the fleet presents for mutual TLS, in the shape the Foundries
// device gateway expects (foundries.md §1.11, §3): subject CN=<device UUID>,
// OU=<factory>, businessCategory=production for production devices, serial =
// the UUID's 128 bits.
//
// It also owns the on-disk layout of a PKI directory (see Init and Issue) and
// reading an Identity back out of a verified client certificate.
//
// It must not know about the gateway's HTTP API, rollouts, storage or the
// simulator: it hands out tls.Certificates and identities, nothing more. Time
// and randomness are arguments; the only places that reach for crypto/rand
// are Issue without a seed (real device keys) and the signature hedging Go
// applies inside crypto/ecdsa.
package pki

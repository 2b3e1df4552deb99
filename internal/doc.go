// Package internal holds fleetsim's shared plumbing (telemetry set-up, PKI
// helpers, test helpers) in its subpackages. Nothing here is product API.
package internal

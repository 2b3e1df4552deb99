// Package loadgen is fleetsim's load generator: virtual devices, each with
// its own mutual-TLS identity and its own connection, drive a device gateway
// over real sockets in a closed loop, and loadgen reports what the server
// delivered (requests and bytes per second, latency percentiles, errors by
// kind). Two workloads are modelled on aktualizr-nano
// (reference/foundries.md): the idle check-in (§1.4), made by the update
// agent itself (package agent) so that the load is exactly what devices
// send, and the firmware download, 16 KiB ranged reads of an image (§1.7).
// Each runs over HTTP/1.1, HTTP/2 or HTTP/3.
//
// loadgen owns the client side only. It must not know the gateway's
// internals: it judges a server solely by what the device API promises
// (status codes, Content-Range, body lengths, TUF metadata the agent
// accepts), so the same run measures the fleetsim gateway and a plain web
// server (nginx) serving the same bytes as a baseline. It holds no copy of
// the device protocol: the check-in is the agent's. Device identities come
// from the directory that `fleetsim pki issue` writes (index.txt and one PEM
// per device).
//
// Unlike fleetsim's simulated paths, a load test is about real elapsed time:
// latencies are read from the wall clock's monotonic reading, and nothing
// here is meant to be reproducible bit for bit.
package loadgen

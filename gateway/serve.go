package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// ServeConfig says where and how a live gateway listens.
type ServeConfig struct {
	// DeviceAddr is the TCP address of the device API (TLS, HTTP/1.1 and
	// HTTP/2); H3Addr the UDP address of its HTTP/3 listener ("" for none).
	// They may share a port number.
	DeviceAddr, H3Addr string
	// AdminAddr is the TCP address of the admin API (TLS); "" for none.
	AdminAddr string
	// Certificate is the gateway's server certificate; ClientCAs verify
	// device and admin certificates (the factory CA).
	Certificate tls.Certificate
	ClientCAs   *x509.CertPool
	// AdminToken lets operators in by bearer token; "" accepts admin
	// certificates only.
	AdminToken string
	// TickInterval is how often the rollout controller and the device
	// flush run (default 1 s); ShutdownTimeout bounds a graceful shutdown
	// (default 10 s).
	TickInterval, ShutdownTimeout time.Duration
	// Ready, if set, is called once every listener is bound, with their
	// addresses (nil for one not configured): tests bind port 0.
	Ready func(device, h3, admin net.Addr)
}

// Serve runs the gateway's listeners until ctx is done, then shuts them
// down gracefully: listeners close, requests in flight finish (up to
// ShutdownTimeout), and pending device records are flushed.
//
// Errors: a listener that cannot be bound; a listener that fails while
// serving.
func (g *Gateway) Serve(ctx context.Context, c ServeConfig) error {
	if c.TickInterval <= 0 {
		c.TickInterval = time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	deviceTLS := &tls.Config{
		Certificates: []tls.Certificate{c.Certificate},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    c.ClientCAs,
		MinVersion:   tls.VersionTLS12,
	}
	errorLog := slog.NewLogLogger(g.log.Handler(), slog.LevelDebug)
	devSrv := &http.Server{
		Handler:           g.DeviceHandler(),
		TLSConfig:         deviceTLS.Clone(),
		ReadHeaderTimeout: 10 * time.Second,
		// A request's body is at most 100 KiB: a client that takes a
		// minute over it is holding a connection, not sending.
		ReadTimeout:    time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       errorLog,
	}
	devLn, err := net.Listen("tcp", c.DeviceAddr)
	if err != nil {
		return fmt.Errorf("device listener: %w", err)
	}
	var closers []func(context.Context) error
	var serveErrs []func() error
	closers = append(closers, devSrv.Shutdown)
	serveErrs = append(serveErrs, func() error { return devSrv.ServeTLS(devLn, "", "") })
	var h3Addr, adminAddr net.Addr
	var udp net.PacketConn
	if c.H3Addr != "" {
		udp, err = net.ListenPacket("udp", c.H3Addr)
		if err != nil {
			devLn.Close()
			return fmt.Errorf("HTTP/3 listener: %w", err)
		}
		h3Addr = udp.LocalAddr()
		h3 := &http3.Server{
			Handler:    devSrv.Handler,
			TLSConfig:  http3.ConfigureTLSConfig(deviceTLS.Clone()),
			QUICConfig: &quic.Config{MaxIdleTimeout: 2 * time.Minute},
		}
		closers = append(closers, func(ctx context.Context) error {
			err := h3.Shutdown(ctx)
			udp.Close()
			return err
		})
		serveErrs = append(serveErrs, func() error { return h3.Serve(udp) })
	}
	if c.AdminAddr != "" {
		adminLn, err := net.Listen("tcp", c.AdminAddr)
		if err != nil {
			devLn.Close()
			if udp != nil {
				udp.Close()
			}
			return fmt.Errorf("admin listener: %w", err)
		}
		adminAddr = adminLn.Addr()
		adminSrv := &http.Server{
			Handler: g.AdminHandler(c.AdminToken),
			TLSConfig: &tls.Config{
				Certificates: []tls.Certificate{c.Certificate},
				ClientAuth:   tls.VerifyClientCertIfGiven,
				ClientCAs:    c.ClientCAs,
				MinVersion:   tls.VersionTLS12,
			},
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          errorLog,
		}
		closers = append(closers, adminSrv.Shutdown)
		serveErrs = append(serveErrs, func() error { return adminSrv.ServeTLS(adminLn, "", "") })
	}
	g.log.Info("gateway listening", "devices", devLn.Addr().String(), "http3", addrString(h3Addr), "admin", addrString(adminAddr))
	if c.Ready != nil {
		c.Ready(devLn.Addr(), h3Addr, adminAddr)
	}

	failed := make(chan error, len(serveErrs))
	var wg sync.WaitGroup
	for _, serve := range serveErrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, quic.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				failed <- err
			}
		}()
	}
	ticker := time.NewTicker(c.TickInterval)
	defer ticker.Stop()
	var serveErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case serveErr = <-failed:
			break loop
		case <-ticker.C:
			if err := g.Tick(g.opts.Clock.Now()); err != nil {
				g.log.Error("tick", "err", err)
			}
		}
	}
	g.log.Info("gateway shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	var errs []error
	for _, cl := range closers {
		errs = append(errs, cl(sctx))
	}
	wg.Wait()
	errs = append(errs, g.Tick(g.opts.Clock.Now()))
	if serveErr != nil {
		return serveErr
	}
	return errors.Join(errs...)
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

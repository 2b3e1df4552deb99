package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/internal/fleetrun"
	"github.com/fleetsim/fleetsim/internal/pki"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// externalFlags say where the external gateway of `fleetsim run --gateway`
// is and which credentials reach it: the files `fleetsim pki init` wrote
// for it, and the image key `fleetsim gateway serve --image-key` trusts.
type externalFlags struct {
	url, admin, pki, ca, imageKey string
}

var externalFlagNames = []string{"gateway", "gateway-admin", "pki", "gateway-ca", "image-key"}

func (e *externalFlags) addFlags(fl *pflag.FlagSet) {
	fl.StringVar(&e.url, "gateway", "", "live mode: run against this gateway's device API, https://host:port, instead of the embedded one")
	fl.StringVar(&e.admin, "gateway-admin", "", "with --gateway: its admin API, https://host:port (fleetsim gateway serve --admin-listen)")
	fl.StringVar(&e.pki, "pki", "", "with --gateway: its PKI directory (fleetsim pki init): the factory CA issues the devices' certificates; the admin certificate and token publish")
	fl.StringVar(&e.ca, "gateway-ca", "", "with --gateway: PEM file of the CA of its server certificate (default: the PKI directory's ca.crt)")
	fl.StringVar(&e.imageKey, "image-key", "", "with --gateway: the MCUboot signing key (PEM) the gateway accepts (default: the run's own, for a gateway that takes unsigned images)")
}

// given reports whether any of the external gateway's flags is set.
func (e *externalFlags) given(cmd *cobra.Command) bool {
	for _, n := range externalFlagNames {
		if cmd.Flags().Changed(n) {
			return true
		}
	}
	return false
}

// gateway reads the external gateway the flags describe; nil without
// --gateway. Errors are exit-2 errors naming the flag.
func (e *externalFlags) gateway(cmd *cobra.Command) (*fleetrun.ExternalGateway, error) {
	usage := func(format string, args ...any) error { return &exitError{2, fmt.Errorf(format, args...)} }
	if e.url == "" {
		if e.given(cmd) {
			return nil, usage("--gateway-admin, --pki, --gateway-ca and --image-key go with --gateway URL")
		}
		return nil, nil
	}
	dev, err := httpsURL(e.url)
	if err != nil {
		return nil, usage("--gateway %q: %v", e.url, err)
	}
	if e.admin == "" || e.pki == "" {
		return nil, usage("--gateway needs --gateway-admin URL (its admin API) and --pki DIR (its PKI directory)")
	}
	admin, err := httpsURL(e.admin)
	if err != nil {
		return nil, usage("--gateway-admin %q: %v", e.admin, err)
	}
	ca, err := pki.LoadCA(e.pki)
	if err != nil {
		return nil, usage("--pki %s: %s (the directory fleetsim pki init made for the gateway)", e.pki, pkiFileError(err))
	}
	adminCert, roots, token, err := pki.AdminTLS(e.pki)
	if err != nil {
		return nil, usage("--pki %s: %s", e.pki, pkiFileError(err))
	}
	if e.ca != "" {
		data, err := os.ReadFile(e.ca)
		if err != nil {
			return nil, usage("--gateway-ca: %v", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(data) {
			return nil, usage("--gateway-ca %s: no PEM certificate in it", e.ca)
		}
	}
	g := &fleetrun.ExternalGateway{
		URL: dev, RootCAs: roots, CA: ca, AdminURL: admin, AdminToken: token,
		AdminClient: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{adminCert}, MinVersion: tls.VersionTLS12},
		}},
	}
	if e.imageKey != "" {
		data, err := os.ReadFile(e.imageKey)
		if err != nil {
			return nil, usage("--image-key: %v", err)
		}
		if g.ImageKey, err = image.ParsePrivateKeyPEM(data); err != nil {
			return nil, usage("--image-key %s: %v (the private key, as fleetsim image keygen writes it)", e.imageKey, err)
		}
	}
	return g, nil
}

// httpsURL reads a server's base URL, https://host:port.
func httpsURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, errors.New("want https://host:port")
	}
	u.Path = ""
	return u, nil
}

// pkiFileError says which file of a PKI directory is missing or bad.
func pkiFileError(err error) string {
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		return fmt.Sprintf("%s: %v", pe.Path, pe.Err)
	}
	return pkiMessage(err)
}

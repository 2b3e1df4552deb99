package agent

import (
	"fmt"
	"strconv"
	"time"

	"github.com/fleetsim/fleetsim/agent/tufnano"
)

// CheckIn is one check-in (aknano_checkin), on one connection to the
// gateway: GET /config, the three PUT /system_info requests, the
// first-contact root when none was provisioned, then the TUF refresh with
// the device's metadata in flash. After a successful refresh it selects a
// target and, when the application's self-test passed, confirms a running
// image on trial and reports how the last update ended.
//
// It returns nil when the refresh succeeded; ErrConnect when the gateway
// could not be reached; the TUF client's *tufnano.Error (or a transport
// error) otherwise.
func (a *Agent) CheckIn() error {
	a.selected = Target{}
	conn, err := a.p.Net.Connect(Gateway)
	if err != nil {
		a.note(Note{Kind: NoteConnect, Text: Gateway.String(), Err: err})
		a.note(Note{Kind: NoteCheckIn, Err: ErrConnect})
		return ErrConnect
	}
	defer conn.Close()
	err = withBuffer(func(buf []byte) error { return a.checkIn(conn, buf) })
	a.note(Note{Kind: NoteCheckIn, Root: a.trustedRoot, Err: err})
	return err
}

func (a *Agent) checkIn(conn Conn, buf []byte) error {
	if resp, err := a.requestInto(conn, "GET", "/config", nil, buf); err == nil && len(resp.Body) > 0 {
		a.applyConfig(ParseDeviceConfig(resp.Body))
	}
	// The three reports' answers are not looked at, as in aknano.
	a.requestInto(conn, "PUT", "/system_info", a.systemInfo(), buf)
	a.requestInto(conn, "PUT", "/system_info/network", a.networkInfo(), buf)
	a.requestInto(conn, "PUT", "/system_info/config", a.configInfo(), buf)

	if err := a.refresh(tufFetcher{a: a, conn: conn, buf: buf}); err != nil {
		return err
	}
	if a.st.selfTestOK {
		a.Confirm()
		a.SendInstallationFinished()
	}
	return nil
}

// refresh provisions the root on first contact if need be, refreshes the
// TUF metadata from fetch and selects the target.
func (a *Agent) refresh(fetch tufnano.Fetcher) error {
	now := a.p.Clock.Now()
	if !a.cfg.NoRootProvisioning && !a.rootProvisioned {
		if err := a.provisionRoot(fetch); err != nil {
			return err
		}
		a.rootProvisioned = true
	}
	client, err := tufnano.New(a.cfg.Limits, fetch, tufStore{a.store})
	if err != nil {
		return err
	}
	defer client.Release()
	// The root chain is walked first, and every root accepted is kept even
	// when a later step of the refresh fails.
	err = client.Refresh(now)
	a.trustedRoot = client.RootVersion()
	if err != nil {
		return err
	}
	a.selectTarget(client.TargetsMetadata())
	return nil
}

// applyConfig takes the settings /config sets. The tag lives in RAM only:
// after a reset the device follows the default tag until its first
// /config.
func (a *Agent) applyConfig(c DeviceConfig) {
	for _, p := range c.Problems {
		a.note(Note{Kind: NoteConfig, Text: p})
	}
	if c.Tag != "" && c.Tag != a.st.tag {
		a.note(Note{Kind: NoteConfig, Text: "tag " + a.st.tag + " -> " + c.Tag})
		a.st.tag = c.Tag
	}
	if c.HasPollInterval && c.PollInterval != a.st.pollInterval {
		a.note(Note{Kind: NoteConfig, Text: "polling interval " + strconv.Itoa(a.st.pollInterval) + " -> " + strconv.Itoa(c.PollInterval)})
		a.st.pollInterval = c.PollInterval
	}
	if a.cfg.OnSetting != nil {
		for _, s := range c.Settings {
			a.cfg.OnSetting(s.Name, s.Value)
		}
	}
}

// provisionRoot is aknano_provision_tuf_root: trust on first use of
// 1.root.json when no root was provisioned at manufacture.
func (a *Agent) provisionRoot(fetch tufnano.Fetcher) error {
	// A stored root starts with '{' (storage.readJSON).
	var first [1]byte
	if err := a.store.read(first[:], offProvisionedRoot); err == nil && first[0] == '{' {
		return nil
	}
	dst := make([]byte, tufSlotSize)
	n, err := fetch.Fetch("1.root.json", dst)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRootProvisioning, err)
	}
	if n < 100 || dst[0] != '{' {
		return fmt.Errorf("%w: 1.root.json is %d bytes and does not start with '{'", ErrRootProvisioning, n)
	}
	return a.store.write(offProvisionedRoot, dst[:n])
}

// selectTarget reads the verified targets.json (parse_targets_metadata),
// pausing for each target as aknano does.
func (a *Agent) selectTarget(targets []byte) {
	t, walked, err := SelectTarget(targets, a.cfg.HardwareID, a.st.tag, a.cfg.ExactMatch)
	if !a.cfg.NoTargetParseDelay && walked > 0 {
		a.p.Clock.Sleep(time.Duration(walked) * TargetParseDelay)
	}
	if err != nil {
		a.note(Note{Kind: NoteSelect, Err: err})
		return
	}
	a.selected = t
	a.note(Note{Kind: NoteSelect, Version: t.Version, Bytes: t.Length, Text: fmt.Sprintf("of %d targets", walked)})
}

// systemInfo is aknano's PUT /system_info body (at most 249 bytes).
func (a *Agent) systemInfo() []byte {
	b := []byte(`{  "product": "` + a.cfg.HardwareID + `", "description": "Aktualizr-nano PoC", "claimed": true,  "serial": "` +
		a.st.serial + `",  "id": "` + a.cfg.HardwareID + `",  "class": "MCU" }`)
	return b[:min(len(b), 249)]
}

// networkInfo is aknano's PUT /system_info/network body.
func (a *Agent) networkInfo() []byte {
	ip, m := a.cfg.IPv4, a.cfg.MAC
	return fmt.Appendf(nil, `{ "local_ipv4": "%d.%d.%d.%d", "mac": "%02x:%02x:%02x:%02x:%02x:%02x"}`,
		ip[0], ip[1], ip[2], ip[3], m[0], m[1], m[2], m[3], m[4], m[5])
}

// configInfo is aknano's PUT /system_info/config body: TOML, not JSON.
func (a *Agent) configInfo() []byte {
	return fmt.Appendf(nil, "[aknano_settings]\npoll_interval = %d\nhw_id = \"%s\"\ntag = \"%s\"\nbinary_compilation_local_time = \"%s\"\nprovisioning_mode = \"%s\"",
		a.st.pollInterval, a.cfg.HardwareID, a.st.tag, a.cfg.BuildTime, a.cfg.ProvisioningMode)
}

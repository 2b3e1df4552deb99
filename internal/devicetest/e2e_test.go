package devicetest

import (
	"bytes"
	"crypto"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/agent"
	"github.com/fleetsim/fleetsim/agent/tufnano"
	"github.com/fleetsim/fleetsim/devicemodel"
	"github.com/fleetsim/fleetsim/devicemodel/live"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/internal/gatewaytest"
	"github.com/fleetsim/fleetsim/internal/pki"
)

// These tests run a virtual MCU through updates end to end: the gateway,
// the device's boot ROM, bootloader and agent, with nothing mocked. Each
// runs on the virtual clock with the gateway in process, and over real
// mutual TLS on loopback against the gateway's own listeners (HTTP/1.1, as
// the MCU speaks it, and HTTP/3).

// mode is where a test's gateway and device run.
type mode struct {
	name  string
	rig   func(t *testing.T, o RigOptions) *Rig
	quick bool // run the short list only
}

var modes = []mode{
	{name: "virtual", rig: func(t *testing.T, o RigOptions) *Rig { return NewRig(t, o) }},
	{name: "mtls-h1", rig: func(t *testing.T, o RigOptions) *Rig { return NewLiveRig(t, live.HTTP1, o) }},
	{name: "h3", rig: func(t *testing.T, o RigOptions) *Rig { return NewLiveRig(t, live.HTTP3, o) }, quick: true},
}

// forModes runs f in every mode; h3 runs only the tests marked all.
func forModes(t *testing.T, all bool, f func(t *testing.T, m mode)) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			if m.quick && !all {
				t.Skip("covered over HTTP/1.1")
			}
			f(t, m)
		})
	}
}

// fastModel is the RT1060 with instant flash (live tests wait on the wall
// clock), a short self-test and power-off time.
func fastModel(r *Rig, edit func(*devicemodel.ModelConfig)) *devicemodel.Model {
	return r.Model("rt1060", func(c *devicemodel.ModelConfig) {
		if r.Live != nil {
			c.Board.Timing = devicemodel.Timing{}
		}
		c.Profiles.SelfTest = 10 * time.Millisecond
		c.PowerOff = 50 * time.Millisecond
		if edit != nil {
			edit(c)
		}
	})
}

// updateRig is a rig with v1000 (the factory image) and v1001 on tag
// devel, and a device of model m on v1000.
func updateRig(t *testing.T, m mode, o RigOptions, edit func(*devicemodel.ModelConfig)) (*Rig, *Dev, gateway.TargetInfo) {
	r := m.rig(t, o)
	model := fastModel(r, edit)
	b := model.Config().Board
	v1 := r.Image(b, 1000, 20000)
	r.Upload(v1, b.HardwareID, "devel")
	ti := r.Upload(r.Image(b, 1001, 24000), b.HardwareID, "devel")
	d := r.Device(model, v1, DeviceOptions{Seed: 1})
	d.Log = func(e devicemodel.Event) { t.Log(e) }
	if r.Live != nil {
		// The shortest interval aknano allows: live tests wait on the wall clock.
		r.SetDeviceConfig(d.UUID(), "polling_interval", "5")
	}
	return r, d, ti
}

func isNote(e devicemodel.Event, k agent.NoteKind) bool {
	return e.Kind == devicemodel.EventAgent && e.Note.Kind == k
}

// confirmed stops a run when version v is confirmed.
func confirmed(v uint32) func(devicemodel.Event) bool {
	return func(e devicemodel.Event) bool {
		return isNote(e, agent.NoteConfirm) && e.Note.Version == v && e.Note.Err == nil
	}
}

// eventSent matches the agent sending an event of type typ with success.
func eventSent(e devicemodel.Event, typ string, success bool) bool {
	return isNote(e, agent.NoteEvent) && e.Note.Err == nil && e.Note.Text == fmt.Sprintf("%s success=%t", typ, success)
}

// checkIns counts successful check-ins.
func checkIns(events []devicemodel.Event) int {
	n := 0
	for _, e := range events {
		if isNote(e, agent.NoteCheckIn) && e.Note.Err == nil {
			n++
		}
	}
	return n
}

// lastNote is the last note of kind k.
func lastNote(events []devicemodel.Event, k agent.NoteKind) agent.Note {
	for i := len(events) - 1; i >= 0; i-- {
		if isNote(events[i], k) {
			return events[i].Note
		}
	}
	return agent.Note{}
}

// wantRunning fails unless the device runs version v, confirmed, with no
// update pending.
func wantRunning(t *testing.T, d *Dev, v uint32) {
	t.Helper()
	app, err := d.Slots()
	if err != nil {
		t.Fatal(err)
	}
	h, err := app.Running()
	if err != nil {
		t.Fatalf("running image: %v", err)
	}
	st, err := app.State()
	if err != nil {
		t.Fatal(err)
	}
	if h.Version.Build != v || st != mcuboot.StateNone {
		t.Fatalf("device runs v%d in state %s, want v%d confirmed (state none)", h.Version.Build, st, v)
	}
}

// ran reports whether version v ever started as firmware.
func ran(events []devicemodel.Event, v uint32) bool {
	for _, e := range events {
		if e.Kind == devicemodel.EventApp && e.Version == v {
			return true
		}
	}
	return false
}

// deviceEvents lists the events the gateway stored for the device, as
// "type success" strings.
func deviceEvents(r *Rig, uuid string) []string {
	var rep gateway.DeviceReport
	r.Admin(http.StatusOK, "GET", "/v1/devices/"+uuid, nil, &rep)
	var out []string
	for _, e := range rep.Events {
		out = append(out, fmt.Sprintf("%s %s %t", e.Type, e.Version, e.Success != nil && *e.Success))
	}
	return out
}

func TestUpdate(t *testing.T) {
	forModes(t, true, func(t *testing.T, m mode) {
		r, d, _ := updateRig(t, m, RigOptions{}, nil)
		if err := r.Run(d, 10*time.Minute, confirmed(1001)); err != nil {
			t.Fatal(err)
		}
		wantRunning(t, d, 1001)
		got := strings.Join(deviceEvents(r, d.UUID()), "; ")
		want := "EcuInstallationCompleted 1000 true; EcuDownloadStarted 1001 true; EcuDownloadCompleted 1001 true; " +
			"EcuInstallationStarted 1001 true; EcuInstallationApplied 1001 true"
		if got != want {
			t.Fatalf("gateway holds events %q, want %q", got, want)
		}
		// The first check-in after the reboot confirms and reports.
		if err := r.Run(d, 10*time.Minute, func(e devicemodel.Event) bool { return eventSent(e, agent.EventInstallationCompleted, true) }); err != nil {
			t.Fatal(err)
		}
		if got := deviceEvents(r, d.UUID()); got[len(got)-1] != "EcuInstallationCompleted 1001 true" {
			t.Fatalf("last event %q, want the confirmed v1001 reported", got[len(got)-1])
		}
	})
}

func TestSelfTestFailureReverts(t *testing.T) {
	forModes(t, true, func(t *testing.T, m mode) {
		r, d, _ := updateRig(t, m, RigOptions{}, func(c *devicemodel.ModelConfig) {
			c.Profiles.ByVersion = map[uint32]devicemodel.Behaviour{1001: devicemodel.FailsSelfTest}
		})
		reported := false
		err := r.Run(d, 10*time.Minute, func(e devicemodel.Event) bool {
			reported = reported || eventSent(e, agent.EventInstallationCompleted, false)
			// After the report, one more check-in selects v1001 again.
			return reported && isNote(e, agent.NoteDecision) && strings.Contains(e.Note.Text, "not retried")
		})
		if err != nil {
			t.Fatal(err)
		}
		if !reported {
			t.Fatal("the rollback was not reported")
		}
		wantRunning(t, d, 1000)
		if !ran(d.Events, 1001) {
			t.Fatal("v1001 never started: the test did not test a failing self-test")
		}
		starts := 0
		for _, ev := range deviceEvents(r, d.UUID()) {
			if ev == "EcuDownloadStarted 1001 true" {
				starts++
			}
		}
		if starts != 1 {
			t.Fatalf("v1001 downloaded %d times, want once (never retried)", starts)
		}
	})
}

func TestPowerCuts(t *testing.T) {
	for _, c := range []struct {
		cut  string
		want []uint32 // acceptable final versions
	}{
		{"download:20", []uint32{1001}},
		{"download:3:before", []uint32{1001}},
		{"swap:37", []uint32{1001}},
		{"swap:11:after", []uint32{1001}},
		// A torn image_ok either holds (v1001 stays) or not (the next boot
		// reverts to v1000, and aknano never retries v1001).
		{"confirm:1", []uint32{1000, 1001}},
	} {
		t.Run(strings.ReplaceAll(c.cut, ":", "-"), func(t *testing.T) {
			forModes(t, false, func(t *testing.T, m mode) {
				r, d, _ := updateRig(t, m, RigOptions{}, nil)
				pc, err := devicemodel.ParsePowerCut(c.cut)
				if err != nil {
					t.Fatal(err)
				}
				d.Arm(pc)
				cut := false
				err = r.Run(d, 10*time.Minute, func(e devicemodel.Event) bool {
					cut = cut || e.Kind == devicemodel.EventPowerCut
					// The update ended: confirmed, or reported rolled back.
					return cut && isNote(e, agent.NoteEvent) && strings.HasPrefix(e.Note.Text, agent.EventInstallationCompleted)
				})
				if err != nil {
					t.Fatal(err)
				}
				if !cut {
					t.Fatal("the power cut never happened")
				}
				app, _ := d.Slots()
				h, err := app.Running()
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range c.want {
					if h.Version.Build == v {
						wantRunning(t, d, v)
						return
					}
				}
				t.Fatalf("device runs v%d, want one of %v", h.Version.Build, c.want)
			})
		})
	}
}

// TestStackedFlashFaults: faults stacked on a device's flash as one
// injector strike where their predicates say (the third program in the
// secondary slot, during the download, is torn; the bootloader's second
// erase of the primary slot, in the swap, is cut before it), are reported
// as power cuts naming the operation, and the update still completes.
func TestStackedFlashFaults(t *testing.T) {
	b, err := devicemodel.LookupBoard("rt1060")
	if err != nil {
		t.Fatal(err)
	}
	desc := fmt.Sprintf("(any (cut during (and (range 0x%x 0x%x) (kind program) (op 3))) (cut before (and (range 0x%x 0x%x) (kind erase) (op 2))))",
		b.Secondary.Offset, b.Secondary.Size, b.Primary.Offset, b.Primary.Size)
	forModes(t, false, func(t *testing.T, m mode) {
		r, d, _ := updateRig(t, m, RigOptions{}, nil)
		inj, err := flashsim.ParseInjector(desc)
		if err != nil {
			t.Fatal(err)
		}
		d.InjectFlashFaults(inj)
		var cuts []string
		err = r.Run(d, 10*time.Minute, func(e devicemodel.Event) bool {
			if e.Kind == devicemodel.EventPowerCut {
				cuts = append(cuts, e.Text)
			}
			return confirmed(1001)(e)
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(cuts) != 2 || !strings.HasPrefix(cuts[0], "flash fault at program 0x") || !strings.HasPrefix(cuts[1], "flash fault at erase 0x") {
			t.Fatalf("power cuts %q; want a program's, then an erase's", cuts)
		}
		wantRunning(t, d, 1001)
	})
}

func TestTamperedFirmwareNeverBoots(t *testing.T) {
	t.Run("hash", func(t *testing.T) {
		forModes(t, false, func(t *testing.T, m mode) {
			r, d, ti := updateRig(t, m, RigOptions{}, nil)
			// The gateway's copy is changed after TUF signed its hash.
			f := r.FirmwareFile(ti)
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 0x40
			if err := os.WriteFile(f, data, 0o600); err != nil {
				t.Fatal(err)
			}
			failed := 0
			err = r.Run(d, 10*time.Minute, func(e devicemodel.Event) bool {
				if eventSent(e, agent.EventDownloadCompleted, false) {
					failed++
				}
				return failed == 2 // and the next check-in tries again, and fails again
			})
			if err != nil {
				t.Fatal(err)
			}
			if failed != 2 || ran(d.Events, 1001) {
				t.Fatalf("%d failed downloads, v1001 ran %t; want 2 and never", failed, ran(d.Events, 1001))
			}
			wantRunning(t, d, 1000)
		})
	})
	t.Run("signature", func(t *testing.T) {
		forModes(t, false, func(t *testing.T, m mode) {
			other, err := image.GenerateKey(image.KeyEd25519, gatewaytest.Rand(9, 'x'))
			if err != nil {
				t.Fatal(err)
			}
			r := m.rig(t, RigOptions{ExtraImageKeys: []crypto.Signer{other}})
			model := fastModel(r, nil)
			b := model.Config().Board
			v1 := r.Image(b, 1000, 20000)
			r.Upload(v1, b.HardwareID, "devel")
			// Signed by a key the gateway accepts but the bootloader does not.
			r.Upload(r.ImageSignedBy(other, b, 1001, 24000), b.HardwareID, "devel")
			d := r.Device(model, v1, DeviceOptions{Seed: 1})
			d.Log = func(e devicemodel.Event) { t.Log(e) }
			rejected := false
			err = r.Run(d, 10*time.Minute, func(e devicemodel.Event) bool {
				rejected = rejected || (e.Kind == devicemodel.EventBoot && e.Boot.Rejected != nil)
				return eventSent(e, agent.EventInstallationCompleted, false)
			})
			if err != nil {
				t.Fatal(err)
			}
			if !rejected || ran(d.Events, 1001) {
				t.Fatalf("bootloader rejected the image: %t; v1001 ran: %t; want true, false", rejected, ran(d.Events, 1001))
			}
			wantRunning(t, d, 1000)
		})
	})
}

// staleTimestamp keeps the first timestamp.json it passes on and, once
// armed, serves that one whatever the repository holds since: a frozen or
// rolled-back repository.
type staleTimestamp struct {
	mu    sync.Mutex
	next  http.Handler
	armed bool
	saved []byte
	hdr   http.Header
}

func (s *staleTimestamp) arm() {
	s.mu.Lock()
	s.armed = true
	s.mu.Unlock()
}

func (s *staleTimestamp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/timestamp.json") {
		s.next.ServeHTTP(w, r)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.armed && s.saved != nil {
		for k, v := range s.hdr {
			w.Header()[k] = v
		}
		w.Write(s.saved)
		return
	}
	rec := &recorder{header: http.Header{}}
	s.next.ServeHTTP(rec, r)
	if s.saved == nil && (rec.code == 0 || rec.code == http.StatusOK) {
		s.saved, s.hdr = bytes.Clone(rec.body.Bytes()), rec.header.Clone()
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	if rec.code != 0 {
		w.WriteHeader(rec.code)
	}
	w.Write(rec.body.Bytes())
}

type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(c int)           { r.code = c }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }

// refused runs until a check-in fails with a TUF error of one of kinds.
func refused(kinds ...tufnano.Kind) func(devicemodel.Event) bool {
	return func(e devicemodel.Event) bool {
		if !isNote(e, agent.NoteCheckIn) || e.Note.Err == nil {
			return false
		}
		k := tufnano.KindOf(e.Note.Err)
		for _, want := range kinds {
			if k == want {
				return true
			}
		}
		return false
	}
}

func TestBadMetadataRefused(t *testing.T) {
	t.Run("expired", func(t *testing.T) {
		forModes(t, false, func(t *testing.T, m mode) {
			// The device's clock is two days ahead of the gateway's: every
			// timestamp it is served has already expired.
			r, d, _ := updateRig(t, m, RigOptions{}, func(c *devicemodel.ModelConfig) { c.ClockSkew = 48 * time.Hour })
			if err := r.Run(d, 10*time.Minute, refused(tufnano.KindFreeze, tufnano.KindExpired)); err != nil {
				t.Fatal(err)
			}
			if k := tufnano.KindOf(lastNote(d.Events, agent.NoteCheckIn).Err); k != tufnano.KindFreeze && k != tufnano.KindExpired {
				t.Fatalf("last check-in refused as %s, want freeze or expired", k)
			}
			if checkIns(d.Events) != 0 || ran(d.Events, 1001) {
				t.Fatal("the device accepted expired metadata")
			}
		})
	})
	t.Run("rolled-back", func(t *testing.T) {
		forModes(t, false, func(t *testing.T, m mode) {
			stale := &staleTimestamp{}
			o := RigOptions{Wrap: func(h http.Handler) http.Handler { stale.next = h; return stale }}
			r := m.rig(t, o)
			model := fastModel(r, nil)
			b := model.Config().Board
			v1 := r.Image(b, 1000, 20000)
			r.Upload(v1, b.HardwareID, "devel")
			d := r.Device(model, v1, DeviceOptions{Seed: 1})
			d.Log = func(e devicemodel.Event) { t.Log(e) }
			okCheckIn := func(e devicemodel.Event) bool { return isNote(e, agent.NoteCheckIn) && e.Note.Err == nil }
			// The device trusts the first timestamp, which the repository
			// keeps...
			if err := r.Run(d, 10*time.Minute, okCheckIn); err != nil {
				t.Fatal(err)
			}
			// ...then a newer one (a target for other boards changes the tag)...
			r.Upload(r.Image(b, 1001, 24000), "OTHER-BOARD", "devel")
			if err := r.Run(d, 10*time.Minute, okCheckIn); err != nil {
				t.Fatal(err)
			}
			// ...and is served the first one again.
			stale.arm()
			if err := r.Run(d, 10*time.Minute, refused(tufnano.KindRollback)); err != nil {
				t.Fatal(err)
			}
			if last := lastNote(d.Events, agent.NoteCheckIn); tufnano.KindOf(last.Err) != tufnano.KindRollback {
				t.Fatalf("last check-in: %v, want a rollback refused", last.Err)
			}
		})
	})
	t.Run("frozen", func(t *testing.T) {
		// The gateway re-signs its timestamp before it expires; a frozen
		// repository keeps serving the old one. Only the virtual clock can
		// wait a day for it to expire.
		stale := &staleTimestamp{}
		r := NewRig(t, RigOptions{Wrap: func(h http.Handler) http.Handler { stale.next = h; return stale }})
		model := fastModel(r, nil)
		b := model.Config().Board
		v1 := r.Image(b, 1000, 20000)
		r.Upload(v1, b.HardwareID, "devel")
		d := r.Device(model, v1, DeviceOptions{Seed: 1})
		r.SetDeviceConfig(d.UUID(), "polling_interval", "3600")
		if err := r.Run(d, 10*time.Minute, func(e devicemodel.Event) bool { return isNote(e, agent.NoteCheckIn) && e.Note.Err == nil }); err != nil {
			t.Fatal(err)
		}
		stale.arm()
		if err := r.Run(d, 72*time.Hour, refused(tufnano.KindFreeze)); err != nil {
			t.Fatal(err)
		}
		if last := lastNote(d.Events, agent.NoteCheckIn); tufnano.KindOf(last.Err) != tufnano.KindFreeze {
			t.Fatal("the frozen timestamp was never refused")
		}
	})
}

func TestIdentityRefused(t *testing.T) {
	t.Run("revoked", func(t *testing.T) {
		forModes(t, false, func(t *testing.T, m mode) {
			r, d, _ := updateRig(t, m, RigOptions{}, nil)
			if err := r.Run(d, 10*time.Minute, func(e devicemodel.Event) bool { return isNote(e, agent.NoteCheckIn) }); err != nil {
				t.Fatal(err)
			}
			r.Admin(http.StatusOK, "DELETE", "/v1/devices/"+d.UUID(), nil, nil)
			before := len(d.Events)
			if err := r.Run(d, 10*time.Minute, func(e devicemodel.Event) bool { return isNote(e, agent.NoteCheckIn) }); err != nil {
				t.Fatal(err)
			}
			if last := lastNote(d.Events, agent.NoteCheckIn); last.Err == nil {
				t.Fatal("a revoked device checked in")
			}
			for _, e := range d.Events[before:] {
				if isNote(e, agent.NoteRequest) && e.Note.Err == nil && e.Note.Status != http.StatusForbidden {
					t.Fatalf("a revoked device was answered %s", e.Note)
				}
			}
		})
	})
	t.Run("foreign", func(t *testing.T) {
		forModes(t, false, func(t *testing.T, m mode) {
			r := m.rig(t, RigOptions{})
			model := fastModel(r, nil)
			b := model.Config().Board
			v1 := r.Image(b, 1000, 20000)
			r.Upload(v1, b.HardwareID, "devel")
			// A device whose certificate another factory's CA signed.
			otherCA, err := pki.NewCA("elsewhere", Epoch.Add(-time.Hour), gatewaytest.Rand(99, 'x'))
			if err != nil {
				t.Fatal(err)
			}
			other := &Rig{T: t, CA: otherCA}
			se, uuid := other.identity(7, false)
			d := &Dev{}
			dev, err := devicemodel.Manufacture(model, r.Host, devicemodel.Spec{UUID: uuid, Serial: "7", SE: se, FactoryImage: v1, Seed: 7}, func(e devicemodel.Event) {
				d.Events = append(d.Events, e)
				if d.stop != nil && d.stop(e) {
					d.Device.Stop()
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			d.Device = dev
			if err := r.Run(d, 10*time.Minute, func(e devicemodel.Event) bool { return isNote(e, agent.NoteCheckIn) }); err != nil {
				t.Fatal(err)
			}
			// TLS 1.3 tells the client of a refused certificate only at its
			// first read, so the refusal may come from Connect or Send.
			if last := lastNote(d.Events, agent.NoteCheckIn); last.Err == nil {
				t.Fatal("a foreign device checked in")
			}
			for _, e := range d.Events {
				if isNote(e, agent.NoteRequest) && e.Note.Status != 0 {
					t.Fatalf("a foreign device was answered: %s", e.Note)
				}
			}
		})
	})
}

func TestTagChange(t *testing.T) {
	forModes(t, true, func(t *testing.T, m mode) {
		r, d, _ := updateRig(t, m, RigOptions{}, nil)
		b := devicemodel.Board{}
		if bb, err := devicemodel.LookupBoard("rt1060"); err == nil {
			b = bb
		}
		r.Upload(r.Image(b, 1002, 24000), b.HardwareID, "main")
		r.SetDeviceConfig(d.UUID(), "z-50-fioctl.toml", "[pacman]\ntags = \"main\"\n")
		if err := r.Run(d, 10*time.Minute, confirmed(1002)); err != nil {
			t.Fatal(err)
		}
		if ran(d.Events, 1001) {
			t.Fatal("the device installed devel's v1001 after moving to main")
		}
		wantRunning(t, d, 1002)
	})
}

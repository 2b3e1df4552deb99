package devicemodel

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/fleetsim/fleetsim/agent"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
)

// Host is the world a device runs in: the live one (the wall clock and
// real sockets) or the fleet engine's (a virtual clock and an in-process
// network). Every device of a fleet may share one Host; its methods are
// called from the devices' goroutines.
type Host interface {
	// Now is the world's time.
	Now() time.Time
	// Sleep blocks the calling device for d, or until interrupt is
	// closed; it reports whether it slept the whole time.
	Sleep(d time.Duration, interrupt <-chan struct{}) bool
	// Connect opens a connection to ep presenting the device's identity.
	Connect(ep agent.Endpoint, id tls.Certificate) (agent.Conn, error)
}

// Provisioner signs the certificate request of a secure element that
// holds no certificate at its first boot (EdgeLock 2GO provisioning).
type Provisioner interface {
	SignCSR(csr []byte) (cert []byte, err error)
}

// ModelConfig describes a kind of device as the factory builds it: the
// board, the bootloader and agent built for it, and how its firmware
// versions behave.
type ModelConfig struct {
	// Board is the hardware; it must have agent storage.
	Board Board
	// Bootloader configures MCUboot; Strategy "" is the board's, Keys are
	// the image verification keys (at least one).
	Bootloader mcuboot.Config
	// Agent configures the update agent; HardwareID "" is the board's.
	Agent agent.Config
	// Profiles say how firmware versions behave (default: all healthy).
	Profiles Profiles
	// ROMKey signs the bootloader image; its public key is fused into
	// every device's one-time-programmable memory. nil uses a fixed key.
	ROMKey crypto.Signer
	// PowerOff is how long power stays off after a cut (default 5 s).
	PowerOff time.Duration
	// Watchdog is the hardware watchdog's timeout (default 60 s): a hung
	// application is reset after it.
	Watchdog time.Duration
	// BootLoopLimit is how many boots in a row may end in a crash before
	// the device counts as bricked and stops (default 10).
	BootLoopLimit int
	// ClockSkew offsets every device's calendar clock from the world's.
	ClockSkew time.Duration
	// Flash configures each device's part (endurance, read errors, ...).
	Flash flashsim.Options
	// Provisioner signs certificates for secure elements that have none.
	Provisioner Provisioner
}

// Model is a validated ModelConfig with what its devices share: the
// bootloader image and the fused ROM key. It is safe for concurrent use.
type Model struct {
	cfg        ModelConfig
	romPublic  crypto.PublicKey
	bootImage  []byte
	partitions []flashsim.Partition // for phases: primary, secondary, agent
}

// ErrModel reports a ModelConfig no device can be built from.
var ErrModel = errors.New("bad device model")

// NewModel checks cfg, fills in its defaults and builds the bootloader
// image. Errors: ErrModel (wrapped, with the reason).
func NewModel(cfg ModelConfig) (*Model, error) {
	bad := func(format string, args ...any) (*Model, error) {
		return nil, fmt.Errorf("%w: %s", ErrModel, fmt.Sprintf(format, args...))
	}
	b := cfg.Board
	if !b.RunsAgent() {
		return bad("board %s has no room for the update agent", b.Name)
	}
	if cfg.Bootloader.Strategy == "" {
		cfg.Bootloader.Strategy = b.Strategy
	}
	if !b.Supports(cfg.Bootloader.Strategy) {
		return bad("board %s cannot run strategy %q (it runs %v)", b.Name, cfg.Bootloader.Strategy, b.Strategies())
	}
	if len(cfg.Bootloader.Keys) == 0 {
		return bad("the bootloader needs at least one image key")
	}
	if _, err := b.Bootloader(b.NewFlash(flashsim.Options{}), cfg.Bootloader); err != nil {
		return bad("%v", err)
	}
	if cfg.Agent.HardwareID == "" {
		cfg.Agent.HardwareID = b.HardwareID
	}
	if cfg.PowerOff == 0 {
		cfg.PowerOff = 5 * time.Second
	}
	if cfg.Watchdog == 0 {
		cfg.Watchdog = 60 * time.Second
	}
	if cfg.BootLoopLimit == 0 {
		cfg.BootLoopLimit = 10
	}
	if cfg.Profiles.SelfTest == 0 {
		cfg.Profiles.SelfTest = time.Second
	}
	if cfg.Profiles.CrashAfter == 0 {
		cfg.Profiles.CrashAfter = 2 * time.Second
	}
	if cfg.ROMKey == nil {
		cfg.ROMKey = defaultROMKey()
	}
	m := &Model{cfg: cfg, romPublic: cfg.ROMKey.Public(),
		partitions: []flashsim.Partition{b.Primary, b.Secondary, b.AgentStorage}}
	var err error
	if m.bootImage, err = bootloaderImage(cfg.ROMKey, cfg.Bootloader, b); err != nil {
		return bad("building the bootloader image: %v", err)
	}
	return m, nil
}

// Config is the model's configuration with its defaults filled in.
func (m *Model) Config() ModelConfig { return m.cfg }

// phaseOf says which phase an application write at absolute offset off
// belongs to.
func (m *Model) phaseOf(off int64) Phase {
	in := func(p flashsim.Partition) bool { return off >= p.Offset && off < p.Offset+p.Size }
	switch {
	case in(m.partitions[0]):
		return PhaseConfirm
	case in(m.partitions[1]):
		return PhaseDownload
	case in(m.partitions[2]):
		return PhaseStorage
	}
	return PhaseAny
}

// checkImage reports whether img is an image this model's bootloader
// boots: it parses and verifies with one of the keys.
func (m *Model) checkImage(img []byte) (*image.Image, error) {
	im, err := image.Parse(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		return nil, err
	}
	if err := im.Verify(m.cfg.Bootloader.Keys); err != nil {
		return nil, err
	}
	return im, nil
}

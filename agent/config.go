package agent

import (
	"errors"
	"fmt"
	"time"

	"github.com/fleetsim/fleetsim/agent/tufnano"
)

// aktualizr-nano's constants (foundries.md §1.3-1.8), the defaults of Config.
const (
	// DefaultTag is AKNANO_DEFAULT_TAG.
	DefaultTag = "devel"
	// DefaultPollInterval is the polling interval before /config sets one.
	DefaultPollInterval = 15 * time.Second
	// MinPollInterval and MaxPollInterval clamp the interval
	// (aknano_limit_sleep_time_range).
	MinPollInterval = 5 * time.Second
	MaxPollInterval = time.Hour
	// ChunkSize is the download's range length (4096*4).
	ChunkSize = 16384
	// ResponseBufferSize is ucUserBuffer: every response, headers and body,
	// must fit it.
	ResponseBufferSize = ChunkSize + 1024
	// MaxFirmwareSize is AKNANO_MAX_FIRMWARE_SIZE: no byte may be written at
	// or past it.
	MaxFirmwareSize = 0x100000
	// OfflineRebootAfter is how long an unconfirmed image may go without a
	// successful check-in before the agent reboots so that the bootloader
	// reverts it.
	OfflineRebootAfter = 180 * time.Second
	// EventAttempts is how often an event is tried, each on a new
	// connection; EventRetryDelay is the pause after a failed connection.
	EventAttempts   = 5
	EventRetryDelay = 2 * time.Second
	// TargetParseDelay is the pause aknano makes per target while parsing
	// targets.json ("give some time to log task").
	TargetParseDelay = 50 * time.Millisecond
	// FlashPageSize is the flash driver's page program size (MFLASH_PAGE_SIZE).
	FlashPageSize = 256
	// MaxTagLength is the longest tag the agent keeps (its tag buffer is
	// AKNANO_MAX_TAG_LENGTH = 40 bytes with the terminator).
	MaxTagLength = 39
)

// Provisioning modes as aknano reports them in /system_info/config.
const (
	ProvisioningNoSE  = "No Secure Element"
	ProvisioningSE05X = "SE05X Standalone"
	ProvisioningEL2GO = "EdgeLock 2GO Managed"
)

// Config is how the agent was built for a board: aktualizr-nano's
// compile-time settings, and the options where other agents behave
// differently. The zero value of every option is aktualizr-nano's
// behaviour.
type Config struct {
	// HardwareID is the board name (BOARD_NAME), e.g. "MIMXRT1060-EVK":
	// targets are selected by it and it names the running target.
	HardwareID string
	// DefaultTag is the tag until /config sets one ("" = DefaultTag).
	DefaultTag string
	// PollInterval is the interval before /config sets one (0 =
	// DefaultPollInterval).
	PollInterval time.Duration
	// ProvisioningMode is reported in /system_info/config ("" =
	// ProvisioningNoSE).
	ProvisioningMode string
	// BuildTime is reported as binary_compilation_local_time, in the C
	// compiler's __DATE__ __TIME__ form ("" = "Nov 10 2023 12:00:00").
	BuildTime string
	// IPv4 and MAC are reported in /system_info/network.
	IPv4 [4]byte
	MAC  [6]byte
	// NoRootProvisioning disables the trust-on-first-use fetch of
	// 1.root.json when no root was provisioned at manufacture
	// (AKNANO_ALLOW_PROVISIONING off).
	NoRootProvisioning bool
	// Limits are the TUF client's bounds (zero = aknano's: 16 KiB
	// metadata, 2 signatures per role, Ed25519 and RSA-PSS only).
	Limits tufnano.Limits
	// OnSetting receives device settings other than the agent's own, as
	// aknano's UpdateSettingValue hook does (btn_polling_interval).
	OnSetting func(name string, value int)

	Options
}

// Options are the behaviours where agents differ. The zero value is
// aktualizr-nano's.
type Options struct {
	// ExactMatch compares hardware ids and tags exactly. aknano compares
	// an entry as a prefix of the device's value (strncmp with the entry's
	// length), so "MIMXRT10" in a target matches a "MIMXRT1060-EVK" device.
	ExactMatch bool
	// ResumeDownload keeps a broken download's progress and continues it
	// with ranges on the next attempt in the same boot; aknano restarts at
	// byte 0.
	ResumeDownload bool
	// RetryRolledBack retries a version that rolled back, after a backoff;
	// nil never retries it (AKNANO_MAX_ROLLED_BACK_VERSION_RETRIES = 0).
	RetryRolledBack *RetryPolicy
	// NoTargetParseDelay skips aknano's 50 ms pause per target.
	NoTargetParseDelay bool
	// MaxFirmwareSize overrides AKNANO_MAX_FIRMWARE_SIZE (0 = 1 MiB).
	MaxFirmwareSize int64
	// Policy decides when the agent may download and reboot.
	Policy Policy
}

// RetryPolicy is aknano's disabled rollback retry: a version that rolled
// back is retried up to Max times, the n-th retry after a random delay of
// up to Base*2^n whole minutes, capped at Cap (coreMQTT's backoffAlgorithm
// with full jitter).
type RetryPolicy struct {
	Max       int
	Base, Cap time.Duration
}

// DefaultRetryPolicy is aknano's disabled setting switched on: 10 minutes,
// doubling, up to 10 days.
func DefaultRetryPolicy(max int) *RetryPolicy {
	return &RetryPolicy{Max: max, Base: 10 * time.Minute, Cap: 10 * 24 * time.Hour}
}

// Policy lets the application decide when an update may be downloaded and
// when the device may reboot into it ("only on mains power", "only at
// night"). A nil function always allows.
type Policy struct {
	// MayDownload is asked before an update is downloaded.
	MayDownload func(now time.Time, t Target) bool
	// MayReboot is asked before rebooting into an installed update. When
	// it refuses, the update stays pending and the agent asks again after
	// each check-in.
	MayReboot func(now time.Time) bool
}

// ErrConfig reports a Config the agent cannot run with.
var ErrConfig = errors.New("bad agent configuration")

// withDefaults checks c and fills in aknano's defaults.
func (c Config) withDefaults() (Config, error) {
	if c.HardwareID == "" || len(c.HardwareID) > 20 {
		return c, fmt.Errorf("%w: hardware id %q must be 1 to 20 characters (AKNANO_MAX_HWID_LENGTH)", ErrConfig, c.HardwareID)
	}
	if c.DefaultTag == "" {
		c.DefaultTag = DefaultTag
	}
	if len(c.DefaultTag) > MaxTagLength {
		return c, fmt.Errorf("%w: tag %q is longer than %d characters", ErrConfig, c.DefaultTag, MaxTagLength)
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.PollInterval < time.Second {
		return c, fmt.Errorf("%w: poll interval %v is below one second", ErrConfig, c.PollInterval)
	}
	if c.ProvisioningMode == "" {
		c.ProvisioningMode = ProvisioningNoSE
	}
	if c.BuildTime == "" {
		c.BuildTime = "Nov 10 2023 12:00:00"
	}
	if c.Limits == (tufnano.Limits{}) {
		c.Limits = DefaultLimits()
	}
	if c.MaxFirmwareSize == 0 {
		c.MaxFirmwareSize = MaxFirmwareSize
	}
	if r := c.RetryRolledBack; r != nil && (r.Max < 1 || r.Base < time.Minute || r.Cap < r.Base) {
		return c, fmt.Errorf("%w: rollback retry needs Max >= 1 and 1 minute <= Base <= Cap", ErrConfig)
	}
	return c, nil
}

// DefaultLimits are the TUF limits aktualizr-nano compiles libtufnano with:
// the 16 KiB metadata buffer, TUF_SIGNATURES_PER_ROLE_MAX_COUNT = 2, and
// Ed25519 and RSA-PSS (libtufnano has no ECDSA).
func DefaultLimits() tufnano.Limits {
	l := tufnano.DefaultLimits()
	l.MaxMetadataSize = ResponseBufferSize - 1024
	l.MaxSignatures = 2
	l.KeyTypes = tufnano.KeyEd25519 | tufnano.KeyRSAPSS
	return l
}

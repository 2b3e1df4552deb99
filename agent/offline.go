package agent

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/fleetsim/fleetsim/agent/tufnano"
)

// Source is an update source without a network: a bundle of TUF metadata
// and firmware delivered over UART or USB (libtufnano's stand-alone mode).
// The agent trusts nothing in it that its TUF client has not verified.
type Source interface {
	tufnano.Fetcher
	// Firmware returns the firmware file whose SHA-256 is sum. Errors:
	// one for which errors.Is(err, tufnano.ErrNotFound) when the source
	// does not carry it.
	Firmware(sum [32]byte) (io.ReaderAt, int64, error)
}

// ErrNoFirmware: the source's targets name firmware it does not carry.
var ErrNoFirmware = errors.New("the update source does not carry the selected firmware")

// CheckSource is the offline check-in: the TUF refresh from src (its
// 1.root.json trusted on first use when no root was provisioned, as on
// first contact with a gateway), with the trusted metadata kept in flash
// as always, then the target selection,
// and, when the self-test passed, the confirmation of a running image on
// trial. Without a gateway there is nothing to report and no /config: the
// device keeps its tag.
//
// Errors: the TUF client's *tufnano.Error.
func (a *Agent) CheckSource(src Source) error {
	a.selected = Target{}
	err := a.refresh(src)
	if err == nil && a.st.selfTestOK {
		a.Confirm()
		a.finishOffline()
	}
	a.note(Note{Kind: NoteCheckIn, Text: "offline", Root: a.trustedRoot, Err: err})
	return err
}

// finishOffline settles the state page after an update as
// SendInstallationFinished does, without the event.
func (a *Agent) finishOffline() {
	if a.finishedSent {
		return
	}
	a.finishedSent = true
	s := &a.st
	if !s.rolledBack && s.lastConfirmed == s.running {
		return
	}
	if s.rolledBack {
		a.note(Note{Kind: NoteDecision, Version: s.lastApplied, Text: "rolled back to v" + fmt.Sprint(s.running)})
	} else {
		s.lastApplied, s.lastConfirmed = 0, s.running
		s.nextRetry, s.retryCount = 0, 0
	}
	s.corrID = ""
	a.saveState()
}

// InstallFrom installs the selected target from src as Install does from
// the firmware host: the same writer, length, SHA-256 and structure checks,
// the image set pending and the state page saved. It reports whether the
// device must reboot into the update.
func (a *Agent) InstallFrom(src Source) bool {
	t := a.selected
	s := &a.st
	id, err := newID(a.p.Rand)
	if err == nil {
		s.corrID = id
		err = a.copyFirmware(src, t)
	}
	reboot := false
	if err != nil {
		a.note(Note{Kind: NoteDownload, Version: t.Version, Err: err})
	} else {
		s.lastApplied = t.Version
		err := a.p.Boot.SetPending(false)
		a.note(Note{Kind: NoteInstall, Version: t.Version, Err: err})
		reboot = err == nil
	}
	if reboot {
		s.retryCount++
		s.nextRetry = a.nextRetryTime()
	}
	a.saveState()
	return reboot
}

// copyFirmware writes t from src into the update slot in chunks, as a
// download would arrive.
func (a *Agent) copyFirmware(src Source, t Target) error {
	r, n, err := src.Firmware(t.SHA256)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoFirmware, err)
	}
	if n != t.Length {
		return fmt.Errorf("%w: %d bytes, want %d", ErrDownloadSize, n, t.Length)
	}
	if n >= a.cfg.MaxFirmwareSize {
		return fmt.Errorf("%w (%d bytes)", ErrFirmwareTooLarge, a.cfg.MaxFirmwareSize)
	}
	w := a.p.Boot.NewUpdateWriter(FlashPageSize)
	sum := sha256.New()
	buf := make([]byte, ChunkSize)
	for off := int64(0); off < n; {
		k := min(int64(len(buf)), n-off)
		if _, err := r.ReadAt(buf[:k], off); err != nil {
			return err
		}
		sum.Write(buf[:k])
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		off += k
		a.note(Note{Kind: NoteDownload, Version: t.Version, Bytes: off, Total: n})
	}
	if err := w.Flush(); err != nil {
		return err
	}
	var got [32]byte
	if sum.Sum(got[:0]); got != t.SHA256 {
		return ErrDownloadHash
	}
	return a.p.Boot.VerifyUpdate(n)
}

// RunOffline is the stand-alone application loop: check the source,
// install a newer matching target and reboot into it; otherwise return.
// An image on trial is confirmed once its self-test passed and the source
// verifies, since no gateway can be reached to prove the network works.
func (a *Agent) RunOffline(src Source) {
	if a.CheckSource(src) != nil {
		return
	}
	t := a.selected
	switch {
	case !a.HasMatchingTarget():
		a.note(Note{Kind: NoteDecision, Text: "no matching target"})
	case a.IsRollback() && !a.ShouldRetryRollback():
		a.note(Note{Kind: NoteDecision, Version: t.Version, Text: "rolled back before: not retried"})
	case a.Current() >= t.Version:
		a.note(Note{Kind: NoteDecision, Version: t.Version, Text: "no update required"})
	default:
		a.note(Note{Kind: NoteDecision, Version: t.Version, Text: fmt.Sprintf("update from v%d", a.Current())})
		if a.InstallFrom(src) {
			a.Reboot("update installed")
		}
	}
}

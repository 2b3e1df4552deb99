package agent

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
)

// Download errors, besides transport and flash errors.
var (
	// ErrDownloadStatus: a range was answered with a status other than 206.
	ErrDownloadStatus = errors.New("range request not answered 206")
	// ErrDownloadSize: the bytes received are not the target's length.
	ErrDownloadSize = errors.New("firmware size differs from the target's length")
	// ErrDownloadHash: the bytes received do not have the target's SHA-256.
	ErrDownloadHash = errors.New("firmware SHA-256 differs from the target's")
	// ErrFirmwareTooLarge: the download reached AKNANO_MAX_FIRMWARE_SIZE.
	ErrFirmwareTooLarge = errors.New("firmware reaches the agent's size limit")
)

// partialDownload is what Options.ResumeDownload keeps of a broken download
// until the next attempt in the same boot.
type partialDownload struct {
	target Target
	w      *mcuboot.SlotWriter
	sum    hash.Hash
}

// Install downloads and installs the selected target
// (aknano_install_selected_target): a new correlation id, the events
// EcuDownloadStarted, EcuDownloadCompleted, EcuInstallationStarted and
// EcuInstallationApplied around the download, the image set pending for a
// trial boot, and the state page saved. It reports whether the device must
// reboot into the update.
func (a *Agent) Install() bool {
	t := a.selected
	s := &a.st
	id, err := newID(a.p.Rand)
	if err != nil {
		a.note(Note{Kind: NoteInstall, Version: t.Version, Err: err})
		return false
	}
	s.corrID = id
	a.SendEvent(EventDownloadStarted, t.Version, true)
	reboot := false
	if err := a.download(t); err != nil {
		a.note(Note{Kind: NoteDownload, Version: t.Version, Err: err})
		a.SendEvent(EventDownloadCompleted, t.Version, false)
	} else {
		a.SendEvent(EventDownloadCompleted, t.Version, true)
		a.SendEvent(EventInstallationStarted, t.Version, true)
		s.lastApplied = t.Version
		a.SendEvent(EventInstallationApplied, t.Version, true)
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

// nextRetryTime is aknano_get_next_rollback_retry_time: now plus a backoff
// in whole minutes from coreMQTT's backoffAlgorithm with full jitter, one
// random value drawn for all steps, one step per install already made.
// aknano runs it (and draws the random value) even with retries disabled,
// with its 10-minute base and 10-day cap.
func (a *Agent) nextRetryTime() uint32 {
	base, limit, attempts := 10*time.Minute, 10*24*time.Hour, 0 // 0: retry forever
	if r := a.cfg.RetryRolledBack; r != nil {
		base, limit, attempts = r.Base, r.Cap, r.Max
	}
	var rnd [4]byte
	_, _ = io.ReadFull(a.p.Rand, rnd[:])
	jitter := binary.LittleEndian.Uint32(rnd[:])
	next, capMin := uint32(base/time.Minute), uint32(limit/time.Minute)
	backoff := uint32(0)
	for i := 0; i < int(a.st.retryCount) && (attempts == 0 || i < attempts); i++ {
		backoff = uint32(uint16(jitter % (next + 1)))
		if next < capMin/2 {
			next += next
		} else {
			next = capMin
		}
	}
	return uint32(a.p.Clock.Now().Unix()) + backoff*60
}

// download fetches t into the update slot (aknano_download_and_flash_image):
// its own connection to the firmware host, 16 KiB ranges on it, each chunk
// hashed and written as it arrives, then the length, the SHA-256 and the
// image's structure checked.
func (a *Agent) download(t Target) error {
	conn, err := a.p.Net.Connect(Files)
	if err != nil {
		a.note(Note{Kind: NoteConnect, Text: Files.String(), Err: err})
		return fmt.Errorf("%w (firmware host): %v", ErrConnect, err)
	}
	p := a.partial
	a.partial = nil
	if p == nil || p.target != t || !a.cfg.ResumeDownload {
		p = &partialDownload{target: t, w: a.p.Boot.NewUpdateWriter(FlashPageSize), sum: sha256.New()}
	}
	err = withBuffer(func(buf []byte) error { return a.fetchRanges(conn, p, buf) })
	conn.Close()
	if err != nil {
		if a.cfg.ResumeDownload {
			a.partial = p
		}
		return err
	}
	if err := p.w.Flush(); err != nil {
		return err
	}
	if n := p.w.Written(); n != t.Length {
		return fmt.Errorf("%w: %d bytes, want %d", ErrDownloadSize, n, t.Length)
	}
	var sum [32]byte
	if p.sum.Sum(sum[:0]); sum != t.SHA256 {
		return ErrDownloadHash
	}
	return a.p.Boot.VerifyUpdate(t.Length)
}

// fetchRanges reads the file from where p left it. The next range starts
// where the received bytes end, so a short answer is tolerated; an empty
// one ends the loop (the size check then fails).
func (a *Agent) fetchRanges(conn Conn, p *partialDownload, buf []byte) error {
	t := p.target
	path := t.FilePath()
	chunk := int64(ChunkSize)
	nextNote := int64(0)
	for cur := p.w.Written(); cur < t.Length; {
		if t.Length-cur < chunk {
			chunk = t.Length - cur
		}
		a.req = Request{Method: "GET", Path: path, RangeStart: cur, RangeEnd: cur + chunk - 1}
		resp, err := conn.Send(&a.req, buf)
		if err != nil {
			return err
		}
		p.sum.Write(resp.Body)
		if cur+int64(len(resp.Body)) >= a.cfg.MaxFirmwareSize {
			return fmt.Errorf("%w (%d bytes)", ErrFirmwareTooLarge, a.cfg.MaxFirmwareSize)
		}
		if _, err := p.w.Write(resp.Body); err != nil {
			return err
		}
		if len(resp.Body) == 0 {
			return nil
		}
		cur += int64(len(resp.Body))
		if resp.Status != 206 {
			return fmt.Errorf("%w: HTTP %d", ErrDownloadStatus, resp.Status)
		}
		if cur >= nextNote || cur == t.Length {
			a.note(Note{Kind: NoteDownload, Version: t.Version, Bytes: cur, Total: t.Length})
			nextNote = cur + t.Length/4
		}
	}
	return nil
}

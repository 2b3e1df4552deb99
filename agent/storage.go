package agent

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/fleetsim/fleetsim/agent/tufnano"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/flashsim"
)

// The agent's flash partition, laid out as aktualizr-nano lays out its 22
// sectors at flash offset 0x600000 (foundries.md §1.12): the identity
// written at provisioning, the state page, then one 16 KiB slot per TUF
// role, each holding the role's JSON as fetched.
const (
	// StorageSize is the partition's size: 22 sectors of 4 KiB.
	StorageSize = 22 * 4096

	offUUID   = 0x0000 // device UUID, 40 bytes
	offSerial = 0x0080 // serial, 50 bytes
	offState  = 0x1000 // the state page (statePageSize bytes)

	offProvisionedRoot = 0x2000 // the root provisioned at manufacture or on first contact
	offRoot            = 0x6000
	offTimestamp       = 0xA000
	offSnapshot        = 0xE000
	offTargets         = 0x12000
	tufSlotSize        = 0x4000

	uuidLen       = 40
	serialLen     = 50
	corrIDLen     = 102 // AKNANO_MAX_UPDATE_CORRELATION_ID_LENGTH
	statePageSize = 256
)

// State page fields. aktualizr-nano packs them into the page in this order
// (the write offsets below), but reads the two rollback fields at offsets
// 108 and 112: 2 bytes early. That read is kept as it is unless the
// rollback retry option is on (see Options.RetryRolledBack).
const (
	stLastApplied   = 0
	stLastConfirmed = 4
	stCorrID        = 8
	stRetryCount    = stCorrID + corrIDLen // 110
	stNextRetry     = stRetryCount + 4     // 114

	stRetryCountRead = 8 + 100 // aknano's AKNANO_FLASH_OFF_ROLLBACK_RETRY_COUNT
	stNextRetryRead  = 12 + 100
)

// tufSlot returns the storage offset of a TUF role's slot.
func tufSlot(role string) (int64, bool) {
	switch role {
	case tufnano.RoleRoot:
		return offRoot, true
	case tufnano.RoleTimestamp:
		return offTimestamp, true
	case tufnano.RoleSnapshot:
		return offSnapshot, true
	case tufnano.RoleTargets:
		return offTargets, true
	}
	return 0, false
}

// storage is the agent's view of its partition.
type storage struct {
	area *flashsim.Area
	page int // flash page program size
}

// write programs data at off as aknano_write_data_to_flash does: each
// sector is erased when the first byte lands in it, pages are programmed
// whole, the last one padded with the erase value. Sectors past the data
// keep what they held.
func (s storage) write(off int64, data []byte) error {
	w := mcuboot.NewSlotWriter(s.area, off, s.page)
	if _, err := w.Write(data); err != nil {
		return err
	}
	return w.Flush()
}

// read reads len(p) bytes at off (aknano_read_flash_storage).
func (s storage) read(p []byte, off int64) error {
	_, err := s.area.ReadAt(p, off)
	return err
}

// cString returns b up to its first NUL.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// identity reads the UUID and serial written at provisioning. Erased flash
// reads as empty strings (aknano turns a first byte of 0xFF into "").
func (s storage) identity() (uuid, serial string, err error) {
	var u [uuidLen]byte
	var sr [serialLen]byte
	if err := s.read(u[:], offUUID); err != nil {
		return "", "", err
	}
	if err := s.read(sr[:48], offSerial); err != nil { // reads are whole words: 50 -> 48
		return "", "", err
	}
	if int8(u[0]) < 0 {
		u[0] = 0
	}
	if int8(sr[0]) < 0 {
		sr[0] = 0
	}
	return cString(u[:]), cString(sr[:]), nil
}

// ProvisionStorage prepares a fresh agent partition as the factory does
// (aknano_save_uuid_and_serial): every sector erased, then one page
// holding the device UUID at offset 0 and the serial at 0x80. A non-nil
// root is written to the provisioned-root slot, as when the TUF root is
// provisioned at manufacture. page is the flash page program size.
func ProvisionStorage(area *flashsim.Area, page int, uuid, serial string, root []byte) error {
	if len(uuid) >= uuidLen || len(serial) >= serialLen {
		return fmt.Errorf("agent: identity too long (UUID %d bytes, serial %d; at most %d and %d)", len(uuid), len(serial), uuidLen-1, serialLen-1)
	}
	if area.Size() < StorageSize {
		return fmt.Errorf("agent: storage partition of %d bytes, need %d", area.Size(), StorageSize)
	}
	if err := area.Erase(0, StorageSize); err != nil {
		return err
	}
	s := storage{area: area, page: page}
	idPage := make([]byte, statePageSize)
	copy(idPage[offUUID:], uuid)
	copy(idPage[offSerial:], serial)
	if err := s.write(offUUID, idPage); err != nil {
		return err
	}
	if root != nil {
		if len(root) >= tufSlotSize {
			return fmt.Errorf("agent: root metadata of %d bytes does not fit its %d-byte slot", len(root), tufSlotSize)
		}
		return s.write(offProvisionedRoot, root)
	}
	return nil
}

// state is the state page.
type state struct {
	lastApplied, lastConfirmed uint32
	corrID                     string
	retryCount                 int32
	nextRetry                  uint32 // epoch seconds
}

// loadState reads the state page as aknano_init_settings does, with its
// sanity rules: versions above 999,999,999 (erased flash) read 0, a
// correlation id whose first byte is not ASCII reads empty, a negative
// retry count reads 0, an erased retry time reads 0. fixedOffsets reads
// the rollback fields where they are written instead of aknano's offsets.
func (s storage) loadState(fixedOffsets bool) (state, error) {
	var p [statePageSize]byte
	if err := s.read(p[:], offState); err != nil {
		return state{}, err
	}
	var st state
	st.lastApplied = binary.LittleEndian.Uint32(p[stLastApplied:])
	if st.lastApplied > 999999999 {
		st.lastApplied = 0
	}
	st.lastConfirmed = binary.LittleEndian.Uint32(p[stLastConfirmed:])
	if st.lastConfirmed > 999999999 {
		st.lastConfirmed = 0
	}
	// aknano reads the id with word-sized reads: 100 of its 102 bytes.
	var id [corrIDLen]byte
	copy(id[:100], p[stCorrID:stCorrID+100])
	if c := int8(id[0]); c < 0 || c > 122 {
		id[0] = 0
	}
	st.corrID = cString(id[:])
	rc, nr := stRetryCountRead, stNextRetryRead
	if fixedOffsets {
		rc, nr = stRetryCount, stNextRetry
	}
	st.retryCount = int32(binary.LittleEndian.Uint32(p[rc:]))
	if st.retryCount < 0 {
		st.retryCount = 0
	}
	st.nextRetry = binary.LittleEndian.Uint32(p[nr:])
	if st.nextRetry == 0xffffffff {
		st.nextRetry = 0
	}
	return st, nil
}

// saveState writes the state page (aknano_update_settings_in_flash): the
// fields packed from offset 0, the rest of the 256 bytes zero; the write
// erases the page's sector first.
func (s storage) saveState(st state) error {
	var p [statePageSize]byte
	binary.LittleEndian.PutUint32(p[stLastApplied:], st.lastApplied)
	binary.LittleEndian.PutUint32(p[stLastConfirmed:], st.lastConfirmed)
	copy(p[stCorrID:stCorrID+corrIDLen-1], st.corrID)
	binary.LittleEndian.PutUint32(p[stRetryCount:], uint32(st.retryCount))
	binary.LittleEndian.PutUint32(p[stNextRetry:], st.nextRetry)
	return s.write(offState, p[:])
}

// readJSON reads the JSON kept in a TUF slot as aknano's
// read_local_json_file does: the slot is read into dst (at most one byte
// less than dst or the slot, the last being the C string's terminator); a
// first byte other than '{' means no file; the file ends at the first
// erased (0xFF) or NUL byte. Errors: tufnano.ErrNotFound; flash errors.
func (s storage) readJSON(off int64, dst []byte) (int, error) {
	n := min(len(dst), tufSlotSize)
	if n == 0 {
		return 0, tufnano.ErrTooLarge
	}
	if err := s.read(dst[:n], off); err != nil {
		return 0, err
	}
	if dst[0] != '{' {
		return 0, tufnano.ErrNotFound
	}
	end := n - 1
	for i, c := range dst[:end] {
		if c == 0xff || c == 0 {
			end = i
			break
		}
	}
	return end, nil
}

// tufStore keeps trusted TUF metadata in the storage slots
// (tufnano.Store). Loading the root falls back to the provisioned root,
// which is then copied into the root slot (tuf_client_read_local_file).
type tufStore struct{ s storage }

func (t tufStore) Load(role string, dst []byte) (int, error) {
	off, ok := tufSlot(role)
	if !ok {
		return 0, tufnano.ErrNotFound
	}
	n, err := t.s.readJSON(off, dst)
	if err == nil || role != tufnano.RoleRoot || !isNotFound(err) {
		return n, err
	}
	if n, err = t.s.readJSON(offProvisionedRoot, dst); err != nil {
		return 0, err
	}
	return n, t.s.write(offRoot, dst[:n])
}

func (t tufStore) Save(role string, data []byte) error {
	off, ok := tufSlot(role)
	if !ok {
		return fmt.Errorf("agent: no flash slot for TUF role %q", role)
	}
	if len(data) > tufSlotSize {
		return fmt.Errorf("agent: %s metadata of %d bytes overflows its %d-byte slot", role, len(data), tufSlotSize)
	}
	return t.s.write(off, data)
}

func isNotFound(err error) bool { return tufnano.KindOf(err) == tufnano.KindNotFound }

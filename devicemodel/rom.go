package devicemodel

import (
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
)

// The boot chain's first stage: an immutable ROM that verifies the
// bootloader before it runs it, against a public key fused into the part's
// one-time-programmable memory at manufacture (NXP's HAB, Nordic's
// immutable bootloader). The bootloader is stored as an MCUboot-format
// image signed by the ROM key, so a corrupt or foreign bootloader never
// runs: the device stops and says why.

// ErrBootloaderRejected: the boot ROM refused the bootloader image.
var ErrBootloaderRejected = errors.New("boot ROM rejected the bootloader")

// bootloaderSize is the bootloader image's payload: MCUboot builds are
// some tens of KiB. A smaller bootloader partition gets a payload that
// fits it with the image's header and TLVs (bootloaderOverhead).
const (
	bootloaderSize     = 32 << 10
	bootloaderOverhead = 0x200 + 0x400
)

// defaultROMKey is the fixed key of models that bring none: a seeded
// Ed25519 key, so every run fuses the same one and the bootloader image is
// the same bytes (ECDSA signatures differ from one signing to the next, in
// length too, and the boot ROM's read time with them).
var defaultROMKey = sync.OnceValue(func() crypto.Signer {
	k, err := image.GenerateKey(image.KeyEd25519, rand.NewChaCha8([32]byte{'f', 'l', 'e', 'e', 't', 's', 'i', 'm', ' ', 'r', 'o', 'm'}))
	if err != nil {
		panic(err) // a fixed seed cannot fail
	}
	return k
})

// bootloaderImage builds the bootloader as the factory flashes it: a
// payload that stands for the MCUboot build (its configuration written at
// the start, a fixed pattern after it), signed by the ROM key.
func bootloaderImage(romKey crypto.Signer, cfg mcuboot.Config, b Board) ([]byte, error) {
	payload := make([]byte, min(bootloaderSize, b.BootloaderArea.Size-bootloaderOverhead))
	desc := fmt.Sprintf("MCUboot strategy=%s downgrade=%d validate-primary=%t board=%s", cfg.Strategy, cfg.Downgrade, cfg.ValidatePrimary, b.Name)
	n := copy(payload, desc)
	seed := sha256.Sum256(payload[:n])
	r := rand.NewChaCha8(seed)
	for i := n; i < len(payload); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < len(payload); j++ {
			payload[i+j] = byte(v >> (8 * j))
		}
	}
	return image.Sign(payload, image.SignOptions{
		Key: romKey, Rand: rand.NewChaCha8(seed), Version: image.Version{Major: 2},
		HeaderSize: 0x200, PadHeader: true, Align: b.Geometry.WriteSize,
	})
}

// verifyBootloader is the ROM's check of the bootloader partition.
func verifyBootloader(area *flashsim.Area, romKey crypto.PublicKey) (*image.Image, error) {
	im, err := image.Parse(area, area.Size())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBootloaderRejected, err)
	}
	if err := im.Verify([]crypto.PublicKey{romKey}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBootloaderRejected, err)
	}
	return im, nil
}

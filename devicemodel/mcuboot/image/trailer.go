package image

import (
	"encoding/binary"
	"fmt"
)

// BootMagic is the trailer magic MCUboot writes at E-16 of a slot when
// BOOT_MAX_ALIGN is 8 (reference §2).
var BootMagic = [16]byte{0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80}

// bootMagicTail is the fixed part of the magic for BOOT_MAX_ALIGN 16 and
// 32, which starts with the max-align as a little-endian u16.
var bootMagicTail = [14]byte{0x2d, 0xe1, 0x5d, 0x29, 0x41, 0x0b, 0x8d, 0x77, 0x67, 0x9c, 0x11, 0x0f, 0x1f, 0x8a}

// Defaults of imgtool sign: -M (the sectors the swap status area covers)
// and --max-align (BOOT_MAX_ALIGN).
const (
	DefaultMaxSectors = 128
	DefaultMaxAlign   = 8
)

// bootMagicSize is the length of the trailer magic, whatever the max-align.
const bootMagicSize = len(BootMagic)

// MagicFor returns the trailer magic for a BOOT_MAX_ALIGN of 8, 16 or 32.
// It returns an error for any other value.
func MagicFor(maxAlign int) ([16]byte, error) {
	switch maxAlign {
	case 8:
		return BootMagic, nil
	case 16, 32:
		var m [16]byte
		binary.LittleEndian.PutUint16(m[:], uint16(maxAlign))
		copy(m[2:], bootMagicTail[:])
		return m, nil
	}
	return [16]byte{}, fmt.Errorf("max-align %d: want 8, 16 or 32", maxAlign)
}

// TrailerSize is the trailer size imgtool reserves when checking that an
// image fits its slot (reference §6.1): the swap status area of maxSectors
// three-entry records of align bytes, four max-align cells (image_ok,
// copy_done, swap_info, swap_size) and the magic cell. An overwrite-only
// trailer has just two cells and the magic. It is the scratch/move size
// even for swap-offset builds, as in imgtool.
func TrailerSize(align, maxAlign, maxSectors int, overwriteOnly bool) int {
	magicCell := alignUp(bootMagicSize, maxAlign)
	if overwriteOnly {
		return 2*maxAlign + magicCell
	}
	return maxSectors*3*align + 4*maxAlign + magicCell
}

// ImageOKOffset is the distance of the image_ok byte from the slot end for
// a max-align: E-24 for 8, E-32 for 16, E-64 for 32.
func ImageOKOffset(maxAlign int) int {
	return alignUp(bootMagicSize, maxAlign) + maxAlign
}

func alignUp(n, a int) int {
	return (n + a - 1) / a * a
}

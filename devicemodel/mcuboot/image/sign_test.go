package image

import (
	"bytes"
	"errors"
	"testing"
)

func TestTrailerSize(t *testing.T) {
	cases := []struct {
		align, maxAlign, sectors int
		ow                       bool
		want                     int
	}{
		{8, 8, 128, false, 3120}, // reference §2: 0xC30
		{1, 8, 128, false, 432},
		{2, 8, 128, false, 816},
		{4, 8, 128, false, 1584},
		{8, 8, 32, false, 32*3*8 + 48},
		{16, 16, 128, false, 128*3*16 + 64 + 16},
		{32, 32, 128, false, 128*3*32 + 128 + 32},
		{8, 8, 128, true, 32}, // reference §2: 2*max_align + 16
		{1, 32, 128, true, 96},
	}
	for _, c := range cases {
		if got := TrailerSize(c.align, c.maxAlign, c.sectors, c.ow); got != c.want {
			t.Errorf("TrailerSize(%d, %d, %d, %v) = %d, want %d", c.align, c.maxAlign, c.sectors, c.ow, got, c.want)
		}
	}
}

// TestPadMaxAlign checks the trailer magic format and the image_ok cell for
// max-align 8, 16 and 32 and both erase values.
func TestPadMaxAlign(t *testing.T) {
	const slot = 0x8000
	for _, ma := range []int{8, 16, 32} {
		for _, erased := range []byte{0xff, 0x00} {
			img, err := Sign(make([]byte, 300), SignOptions{HeaderSize: 32, PadHeader: true, SlotSize: slot, Align: 4, MaxAlign: ma,
				Confirm: true, EraseValue: erased, EraseValueSet: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(img) != slot {
				t.Fatalf("padded to %d", len(img))
			}
			magic, _ := MagicFor(ma)
			if !bytes.Equal(img[slot-16:], magic[:]) {
				t.Errorf("max-align %d: magic % x", ma, img[slot-16:])
			}
			if ma != 8 && (img[slot-16] != byte(ma) || img[slot-15] != 0 || img[slot-14] != 0x2d) {
				t.Errorf("max-align %d: magic must start with the align as u16 LE", ma)
			}
			okOff := slot - map[int]int{8: 24, 16: 32, 32: 64}[ma]
			im := mustParse(t, img)
			for i := int(im.End); i < slot-16; i++ {
				want := erased
				if i == okOff {
					want = 1
				}
				if img[i] != want {
					t.Fatalf("max-align %d erased %#x: byte %#x = %#x, want %#x", ma, erased, i, img[i], want)
				}
			}
			for i := 32; i < int(im.Header.HdrSize); i++ {
				if img[i] != erased {
					t.Fatalf("header padding byte %d = %#x", i, img[i])
				}
			}
		}
	}
	if _, err := MagicFor(4); err == nil {
		t.Error("MagicFor(4) accepted")
	}
}

// TestFitCheck: image + trailer may fill the slot exactly, one byte more is
// refused, and the overwrite-only trailer is smaller.
func TestFitCheck(t *testing.T) {
	base := SignOptions{HeaderSize: 32, PadHeader: true, Align: 8}
	img, err := Sign(make([]byte, 1000), base)
	if err != nil {
		t.Fatal(err)
	}
	exact := len(img) + TrailerSize(8, 8, 128, false)
	for _, pad := range []bool{false, true} {
		o := base
		o.SlotSize, o.Pad = exact, pad
		if _, err := Sign(make([]byte, 1000), o); err != nil {
			t.Errorf("exact fit (pad %v): %v", pad, err)
		}
		o.SlotSize = exact - 1
		if _, err := Sign(make([]byte, 1000), o); !errors.Is(err, ErrTooLarge) {
			t.Errorf("one byte over (pad %v): %v", pad, err)
		}
	}
	o := base
	o.SlotSize, o.OverwriteOnly, o.Confirm = len(img)+32, true, true
	out, err := Sign(make([]byte, 1000), o)
	if err != nil {
		t.Fatalf("overwrite-only fit: %v", err)
	}
	// imgtool leaves image_ok erased in overwrite-only trailers.
	if out[len(out)-24] != 0xff || !bytes.Equal(out[len(out)-16:], BootMagic[:]) {
		t.Errorf("overwrite-only trailer % x", out[len(out)-32:])
	}
	o.SlotSize--
	if _, err := Sign(make([]byte, 1000), o); !errors.Is(err, ErrTooLarge) {
		t.Errorf("overwrite-only one byte over: %v", err)
	}
	// The vectors' 20 KiB image in a 128 KiB slot with max-sectors 32.
	if n := 21142 + TrailerSize(8, 8, 32, false); n > vectorSlotSize {
		t.Errorf("vector would not fit: %d", n)
	}
}

func TestSignHeader(t *testing.T) {
	payload := make([]byte, 0x100+50)
	payload[0x100] = 0xaa
	img, err := Sign(payload, SignOptions{HeaderSize: 0x100, Version: Version{3, 1, 4, 1}, LoadAddr: 0x20001000})
	if err != nil {
		t.Fatal(err)
	}
	im := mustParse(t, img)
	h := im.Header
	if h.HdrSize != 0x100 || h.ImgSize != 50 || h.LoadAddr != 0x20001000 || h.Flags != FlagRAMLoad || h.Version != (Version{3, 1, 4, 1}) {
		t.Errorf("header %+v", h)
	}
	if img[0x100] != 0xaa || img[40] != 0 {
		t.Errorf("payload not kept in place")
	}
	rom, err := Sign(payload, SignOptions{HeaderSize: 0x100, LoadAddr: 0x8000, Flags: FlagROMFixed | FlagNonBootable})
	if err != nil {
		t.Fatal(err)
	}
	if h := mustParse(t, rom).Header; h.Flags != FlagROMFixed|FlagNonBootable || h.LoadAddr != 0x8000 {
		t.Errorf("ROM-fixed header %+v", h)
	}
}

func TestSignOptionErrors(t *testing.T) {
	ec := loadSigner(t, "imgtool/ecdsa-p256.pem")
	ok := SignOptions{HeaderSize: 32, PadHeader: true}
	cases := []struct {
		name    string
		payload []byte
		mod     func(*SignOptions)
	}{
		{"header too small", nil, func(o *SignOptions) { o.HeaderSize = 31 }},
		{"header too large", nil, func(o *SignOptions) { o.HeaderSize = 0x10000 }},
		{"align 3", nil, func(o *SignOptions) { o.Align = 3 }},
		{"max-align 4", nil, func(o *SignOptions) { o.MaxAlign = 4 }},
		{"max-sectors negative", nil, func(o *SignOptions) { o.MaxSectors = -1 }},
		{"erase value 0x55", nil, func(o *SignOptions) { o.EraseValue, o.EraseValueSet = 0x55, true }},
		{"pad without slot", nil, func(o *SignOptions) { o.Pad = true }},
		{"confirm without slot", nil, func(o *SignOptions) { o.Confirm = true }},
		{"negative slot", nil, func(o *SignOptions) { o.SlotSize = -1 }},
		{"ecdsa without rand", nil, func(o *SignOptions) { o.Key = ec }},
		{"non-zero header region", append([]byte{0, 1, 2}, make([]byte, 64)...), func(o *SignOptions) { o.PadHeader = false }},
		{"payload shorter than header", make([]byte, 8), func(o *SignOptions) { o.PadHeader = false }},
	}
	for _, c := range cases {
		o := ok
		c.mod(&o)
		if _, err := Sign(c.payload, o); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	if _, err := Sign(nil, ok); err != nil {
		t.Errorf("empty payload with a padded header: %v", err)
	}
}

// TestSignDefaultMaxAlign: --align above 8 raises the default max-align
// and with it the magic format.
func TestSignDefaultMaxAlign(t *testing.T) {
	img, err := Sign(nil, SignOptions{HeaderSize: 32, PadHeader: true, SlotSize: 0x4000, Align: 16, Pad: true})
	if err != nil {
		t.Fatal(err)
	}
	m16, _ := MagicFor(16)
	if !bytes.Equal(img[len(img)-16:], m16[:]) {
		t.Errorf("magic % x, want the max-align 16 format", img[len(img)-16:])
	}
}

package mcuboot

import (
	"errors"
	"fmt"
	"testing"

	"github.com/fleetsim/fleetsim/flashsim"
)

const (
	U = MagicUnset
	G = MagicGood
	B = MagicBad
)

const (
	fu = FlagUnset
	fs = FlagSet
	fb = FlagBad
)

func ts(m MagicState, ok, cd FlagState) TrailerState {
	return TrailerState{Magic: m, ImageOK: ok, CopyDone: cd}
}

// TestSwapTable is reference §3.2, row by row, with BAD values.
func TestSwapTable(t *testing.T) {
	cases := []struct {
		row      string
		pri, sec TrailerState
		rowI     bool
		want     SwapType
	}{
		{"I offset: secondary GOOD, image_ok UNSET, copy_done SET", ts(G, fs, fs), ts(G, fu, fs), true, SwapRevert},
		{"I needs an offset build, else II", ts(G, fs, fs), ts(G, fu, fs), false, SwapTest},
		{"II pending test", ts(G, fs, fs), ts(G, fu, fu), false, SwapTest},
		{"II with any primary (erased)", ts(U, fu, fu), ts(G, fu, fu), false, SwapTest},
		{"II with a BAD primary", ts(B, fb, fb), ts(G, fu, fb), false, SwapTest},
		{"II offset build, copy_done UNSET", ts(G, fs, fs), ts(G, fu, fu), true, SwapTest},
		{"III pending permanent", ts(G, fs, fs), ts(G, fs, fu), false, SwapPerm},
		{"III copy_done is ignored", ts(G, fu, fs), ts(G, fs, fs), false, SwapPerm},
		{"III beats IV", ts(G, fu, fs), ts(G, fs, fu), false, SwapPerm},
		{"II beats IV", ts(G, fu, fs), ts(G, fu, fu), false, SwapTest},
		{"IV unconfirmed test, secondary erased", ts(G, fu, fs), ts(U, fu, fu), false, SwapRevert},
		{"IV secondary magic BAD (PR #2100)", ts(G, fu, fs), ts(B, fu, fu), false, SwapRevert},
		{"IV secondary GOOD but image_ok BAD", ts(G, fu, fs), ts(G, fb, fu), false, SwapRevert},
		{"secondary image_ok BAD matches no upgrade row", ts(G, fs, fs), ts(G, fb, fu), false, SwapNone},
		{"secondary magic BAD, primary confirmed", ts(G, fs, fs), ts(B, fu, fu), false, SwapNone},
		{"confirmed primary, empty secondary", ts(G, fs, fs), ts(U, fu, fu), false, SwapNone},
		{"factory image (copy_done UNSET)", ts(G, fs, fu), ts(U, fu, fu), false, SwapNone},
		{"--pad image without confirm", ts(G, fu, fu), ts(U, fu, fu), false, SwapNone},
		{"primary image_ok BAD", ts(G, fb, fs), ts(U, fu, fu), false, SwapNone},
		{"primary copy_done BAD", ts(G, fu, fb), ts(U, fu, fu), false, SwapNone},
		{"primary magic BAD", ts(B, fu, fs), ts(U, fu, fu), false, SwapNone},
		{"nothing anywhere", ts(U, fu, fu), ts(U, fu, fu), false, SwapNone},
	}
	for _, c := range cases {
		if got := DecideSwapType(c.pri, c.sec, c.rowI); got != c.want {
			t.Errorf("%s: pri %v sec %v rowI %v = %s, want %s", c.row, c.pri, c.sec, c.rowI, got, c.want)
		}
	}
}

// TestSwapTableExhaustive states the table's rules in prose form and checks
// all 729 combinations of trailer states against them.
func TestSwapTableExhaustive(t *testing.T) {
	magics := []MagicState{U, G, B}
	flagStates := []FlagState{fu, fs, fb}
	for _, rowI := range []bool{false, true} {
		for _, pm := range magics {
			for _, po := range flagStates {
				for _, pc := range flagStates {
					for _, sm := range magics {
						for _, so := range flagStates {
							for _, sc := range flagStates {
								pri, sec := ts(pm, po, pc), ts(sm, so, sc)
								var want SwapType
								switch {
								case sm == G && so == fu && sc == fs && rowI:
									want = SwapRevert
								case sm == G && so == fu:
									want = SwapTest
								case sm == G && so == fs:
									want = SwapPerm
								case pm == G && po == fu && pc == fs:
									want = SwapRevert
								default:
									want = SwapNone
								}
								if got := DecideSwapType(pri, sec, rowI); got != want {
									t.Fatalf("pri %+v sec %+v rowI %v = %s, want %s", pri, sec, rowI, got, want)
								}
							}
						}
					}
				}
			}
		}
	}
}

func slots(t *testing.T, w int) (*flashsim.Device, *flashsim.Area, *flashsim.Area) {
	t.Helper()
	dev := flashsim.New(flashsim.Uniform(16, 4096, w, 0xff), flashsim.Options{})
	p, err := flashsim.NewArea(dev, flashsim.Partition{Name: "primary", Offset: 0, Size: 8 * 4096})
	must(t, err)
	s, err := flashsim.NewArea(dev, flashsim.Partition{Name: "secondary", Offset: 8 * 4096, Size: 8 * 4096})
	must(t, err)
	return dev, p, s
}

func TestSetPending(t *testing.T) {
	for _, perm := range []bool{false, true} {
		for _, w := range []int{1, 4, 8, 32} {
			t.Run(fmt.Sprintf("perm=%v/w%d", perm, w), func(t *testing.T) {
				dev, p, s := slots(t, w)
				must(t, SetPending(s, perm))
				st, err := NewTrailer(s, flagLayout(s)).Read()
				must(t, err)
				want := SwapTest
				if perm {
					want = SwapPerm
				}
				if st.Magic != MagicGood || st.SwapType != want || (st.ImageOK == FlagSet) != perm {
					t.Errorf("secondary trailer %+v after SetPending(%v)", st, perm)
				}
				if got, err := ReadSwapType(p, s); got != want || err != nil {
					t.Errorf("ReadSwapType = %s, %v; want %s", got, err, want)
				}
				// Already pending: nothing is written, TEST is not upgraded.
				ops := dev.Ops()
				must(t, SetPending(s, true))
				if dev.Ops() != ops {
					t.Errorf("SetPending on a pending slot wrote %d times", dev.Ops()-ops)
				}
			})
		}
	}
}

// TestSetPendingWriteOrder: a cut after the magic turns a permanent request
// into a test, never the reverse (reference §3.3).
func TestSetPendingWriteOrder(t *testing.T) {
	dev, p, s := slots(t, 8)
	f := flashsim.Wrap(dev, flashsim.PowerCut{Op: 2, Kind: flashsim.CutBefore}.Injector())
	if err := SetPending(mustArea(t, f, s), true); !errors.Is(err, flashsim.ErrPowerLoss) {
		t.Fatalf("SetPending with a cut = %v, want power loss", err)
	}
	if got, err := ReadSwapType(p, s); got != SwapTest || err != nil {
		t.Errorf("after a cut at the second write: %s, %v; want test", got, err)
	}
}

func TestSetPendingBadMagic(t *testing.T) {
	_, _, s := slots(t, 8)
	m := [16]byte{1, 2, 3}
	must(t, s.Program(s.Size()-16, m[:]))
	if err := SetPending(s, false); !errors.Is(err, ErrBadImage) {
		t.Errorf("SetPending over a corrupt magic = %v, want ErrBadImage", err)
	}
}

func TestConfirm(t *testing.T) {
	dev, p, s := slots(t, 8)
	// No trailer: already permanent, nothing written.
	must(t, Confirm(p))
	if dev.Ops() != 0 {
		t.Errorf("Confirm on an erased trailer wrote")
	}
	tr := NewTrailer(p, flagLayout(p))
	must(t, tr.WriteCopyDone())
	must(t, tr.WriteMagic())
	if got, _ := ReadSwapType(p, s); got != SwapRevert {
		t.Fatalf("unconfirmed test image: swap type %s, want revert", got)
	}
	must(t, Confirm(p))
	if got, _ := ReadSwapType(p, s); got != SwapNone {
		t.Errorf("after Confirm: swap type %s, want none", got)
	}
	ops := dev.Ops()
	must(t, Confirm(p))
	if dev.Ops() != ops {
		t.Errorf("second Confirm wrote")
	}
	_, p2, _ := slots(t, 8)
	m := [16]byte{9}
	must(t, p2.Program(p2.Size()-16, m[:]))
	if err := Confirm(p2); !errors.Is(err, ErrBadVector) {
		t.Errorf("Confirm over a corrupt magic = %v, want ErrBadVector", err)
	}
}

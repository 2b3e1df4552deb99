// Package flashsim models NOR flash as a microcontroller sees it: a geometry of
// (possibly mixed-size) sectors, program and erase rules that a real part
// enforces, partitions (flash areas), wear, and faults stacked as wrappers
// over it (FaultyFlash): power cuts that leave the part exactly as real
// silicon would (torn programs and erases included), sectors that wear out,
// read bit flips.
//
// # Rules
//
// A Device refuses, with an *OpError wrapping a sentinel and without changing
// anything: accesses outside the part (ErrOutOfBounds); programs whose offset
// or length is not a multiple of the write size (ErrMisaligned); programs over
// any byte that does not hold the erase value (ErrNotErased, checked per byte,
// so bytes a torn program reached are not programmable again until erased);
// erases that do not start and end on sector boundaries (ErrEraseBoundary).
// With Options.WriteOnce a program is also refused over any write unit
// programmed since its last erase, even one that still reads erased, which is
// the discipline MCUboot's simulator checks and ECC-protected parts enforce.
// Reads have no alignment rule.
//
// # Fault model
//
// Every fault is chosen by a seeded source (never by global randomness), so
// one seed replays a run. The part's own faults come with it, from the
// source in Options:
//
//   - Wear (Options.Endurance): the erase after a sector's rated cycles fails
//     with ErrWornOut and the sector stays worn: it reads, but never erases
//     or programs again. A multi-sector erase stops at the worn sector, the
//     sectors before it erased.
//   - Read bit errors (Options.ReadBitErrorRate): bits flip in the buffer a
//     read returns, never in the flash.
//
// Faults from outside the part compose as a wrapper, after pebble's
// vfs/errorfs: Wrap(part, injector) is a FaultyFlash, and an Injector sees
// every operation (kind, range, index) before the part does and chooses its
// fault. Injectors stack with Any and strike where predicates say: OnOp(n)
// (the n-th program or erase since arming, rejected ones included, reads
// not counted), OnKind, InRange (a partition), Randomly(p, seed), And, Or,
// Not, Once. Each prints as an s-expression that ParseInjector reads back,
// so a scenario or a failure report can carry one as text:
//
//	(any (cut during (and (range 0x20000 0x20000) (op 3)))
//	     (bit-flips 1e-06 7 (kind read)))
//
// The faults:
//
//   - Power cut (Cut; PowerCut.Injector for "kind at op N"). CutBefore: the
//     operation is not performed (MCUboot's simulator model). CutAfter: it
//     completes. CutDuring: it is torn by the part (TearFlash, which Device
//     is; over another Flash it degrades to CutBefore): a program leaves
//     each of its bytes either fully programmed or untouched, reaching a
//     random fraction of them; an erase of several sectors erases the ones
//     before a randomly chosen sector, leaves that one with a random subset
//     of its bytes erased and the rest as they were, and does not touch the
//     ones after it. The operation returns ErrPowerLoss, and so does every
//     operation, reads included, until PowerOn. An operation a rule of the
//     part refuses is refused as ever (counted in Stats.Rejected, nothing
//     changed) unless the cut came before it reached the part, and reports
//     ErrPowerLoss either way.
//   - Wear-out (WearOut): the first sector of the program or erase struck
//     wears out at once, and behaves from then on as a sector past
//     Options.Endurance does.
//   - Bit flips (BitFlips): like read bit errors, for the reads chosen.
//
// A Device itself is always powered; tears draw from its fault source, so
// a part under the same cuts tears alike whatever wraps it.
//
// # Sharing
//
// Sector contents live in a radix tree of immutable values stored by
// content, process-wide: pages (256 bytes by default, Options.PageSize) at
// the bottom and nodes of 16 children above. Equal subtrees are one value,
// so an image every device holds is stored once, an erased region is the one
// erased subtree, and a part differing from another in one page shares all
// but the path to it. A program or erase rebuilds the path it touches (copy
// on write); small programs gather in a short overlay first, and pages only
// one device has (its identity) stay there, so they cost no private path.
// The store keeps weak pointers, so the garbage collector reclaims what no
// device holds any more; erase counts are stored the same way. Clone costs a
// root and an overlay. Options.NoSharing keeps plain private byte slices
// instead; the two give identical results, which the tests check on random
// operation sequences.
//
// flashsim imports nothing of fleetsim's and never reads the wall clock or
// global randomness. It knows nothing of bootloaders or images: MCUboot's
// trailer and swap logic live in devicemodel/mcuboot, on top of Flash.
package flashsim

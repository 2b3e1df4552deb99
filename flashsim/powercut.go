package flashsim

import "fmt"

// CutKind says where, relative to the operation it hits, power is cut.
type CutKind int

const (
	// CutBefore cuts power as the operation is issued: it is not performed.
	// This is MCUboot's simulator's model (sim/mcuboot-sys run.c).
	CutBefore CutKind = iota
	// CutAfter cuts power right after the operation completed, before its
	// caller learns of it.
	CutAfter
	// CutDuring tears the operation: a program leaves a random subset of
	// its bytes programmed, an erase leaves one of its sectors partly erased.
	CutDuring
)

// String returns "before", "after" or "during".
func (k CutKind) String() string {
	switch k {
	case CutBefore:
		return "before"
	case CutAfter:
		return "after"
	case CutDuring:
		return "during"
	}
	return fmt.Sprintf("CutKind(%d)", int(k))
}

// PowerCut names a power cut: at the Op-th program or erase operation
// (1-based, counted from the arming of its injector, rejected operations
// included), Kind says how much of it happens.
type PowerCut struct {
	Op   int
	Kind CutKind
}

// String describes the cut as "power cut KIND op N", for failure reports.
func (c PowerCut) String() string { return fmt.Sprintf("power cut %s op %d", c.Kind, c.Op) }

// Injector returns a fresh injector that makes the cut, (cut KIND (op N)),
// for a FaultyFlash; nil, no fault, when Op is below 1.
func (c PowerCut) Injector() Injector {
	if c.Op < 1 {
		return nil
	}
	return Cut(c.Kind, OnOp(c.Op))
}

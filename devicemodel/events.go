package devicemodel

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/fleetsim/fleetsim/agent"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
)

// EventKind says what happened to a device.
type EventKind uint8

// Device events. Their names are part of logs and golden traces.
const (
	// EventStart: the MCU starts from ROM (power on or reset).
	EventStart EventKind = iota + 1
	// EventBoot: the bootloader hands over (Boot says what it did).
	EventBoot
	// EventApp: the firmware starts (Version, Text: its behaviour), or
	// fails a start-up step (Err).
	EventApp
	// EventAgent: the agent did something (Note).
	EventAgent
	// EventReset: the MCU resets (Text: why).
	EventReset
	// EventPowerCut: power is cut (Text: the cut).
	EventPowerCut
	// EventPowerOff: power stays off for Text, then comes back.
	EventPowerOff
	// EventHalt: the device stopped for good (Err).
	EventHalt
)

var eventNames = [...]string{
	EventStart:    "start",
	EventBoot:     "boot",
	EventApp:      "app",
	EventAgent:    "agent",
	EventReset:    "reset",
	EventPowerCut: "power-cut",
	EventPowerOff: "power-off",
	EventHalt:     "halt",
}

func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "event(" + strconv.Itoa(int(k)) + ")"
}

// Event is one thing a device did.
type Event struct {
	Kind    EventKind
	Text    string
	Version uint32
	Boot    *mcuboot.BootResult
	Note    agent.Note
	Err     error
}

// String formats the event as one stable line.
func (e Event) String() string {
	if e.Kind == EventAgent {
		return "agent " + e.Note.String()
	}
	var b strings.Builder
	b.WriteString(e.Kind.String())
	if r := e.Boot; r != nil {
		fmt.Fprintf(&b, " v%d swap=%s", r.Header.Version.Build, r.SwapType)
		if r.Resumed {
			b.WriteString(" resumed")
		}
		if r.Rejected != nil {
			fmt.Fprintf(&b, " rejected=%q", r.Rejected.Error())
		}
	}
	if e.Version != 0 {
		fmt.Fprintf(&b, " v%d", e.Version)
	}
	if e.Text != "" {
		b.WriteByte(' ')
		b.WriteString(e.Text)
	}
	if e.Err != nil {
		b.WriteString(" error: ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (d *Device) emit(e Event) { d.log(e) }

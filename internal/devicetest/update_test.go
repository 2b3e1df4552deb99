package devicetest

import (
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/agent"
	"github.com/fleetsim/fleetsim/devicemodel"
)

func TestUpdateConfirms(t *testing.T) {
	r := NewRig(t, RigOptions{})
	m := r.Model("rt1060", nil)
	b := m.Config().Board
	v1 := r.Image(b, 1000, 20000)
	v2 := r.Image(b, 1001, 24000)
	r.Upload(v1, b.HardwareID, "devel")
	r.Upload(v2, b.HardwareID, "devel")
	d := r.Device(m, v1, DeviceOptions{Seed: 1})
	d.Log = func(e devicemodel.Event) { t.Logf("%s %s", r.Host.Now().Format("15:04:05.000"), e) }
	err := r.Run(d, 10*time.Minute, func(e devicemodel.Event) bool {
		return e.Kind == devicemodel.EventAgent && e.Note.Kind == agent.NoteConfirm && e.Note.Version == 1001
	})
	if err != nil {
		t.Fatal(err)
	}
}

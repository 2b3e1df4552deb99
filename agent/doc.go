// Package agent is the update agent the device runs (aktualizr-nano
// protocol): check-in, TUF refresh, target selection, ranged download into
// the secondary slot, install and confirm through the boot hand-off, and
// events, with a step API and policy hooks for the application.
//
// The agent is the real device firmware, written as straight-line code in one
// task that blocks on I/O through the device platform it is given (clock,
// network, flash partitions, boot control, secure element). It never imports
// sim, gateway, scenarios or k6, and is unaware of being simulated: the same
// code runs in virtual time and against a real gateway over real sockets.
// Trust in metadata and firmware comes only from agent/tufnano.
package agent

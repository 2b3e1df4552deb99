// Package gateway is the device gateway: the device API that aktualizr-nano
// style agents call (/repo, /config, /system_info, /events, /mcu/files),
// mutual-TLS device identity, the rollout controller, the admin API and the
// TCP+TLS and HTTP/3 listeners.
//
// Its state is one data directory (store, TUF repositories, firmware) on a
// vfs.FS: the disk for a live gateway, memory (vfs.NewMem) for a virtual run,
// which then touches no disk and restarts by reopening the same FS value.
//
// Devices reach the gateway only through its API, so this package and its
// subpackages never import sim, devicemodel or agent: the same gateway serves
// virtual devices in-process and real ones over sockets.
package gateway

// Package firmware owns the gateway's firmware files: a content-addressed
// directory where each image is stored once under its SHA-256, laid out as
// devices ask for it (GET /mcu/files/<h0>/<h1..h31>.bin, foundries.md §1.7),
// and served in byte ranges straight from the file, never read whole into
// memory. The directory is on a vfs.FS: the disk, or pebble's file system in
// memory for a virtual run.
//
// It knows nothing of images' contents (the gateway checks an MCUboot image
// before storing it), of targets or of devices.
package firmware

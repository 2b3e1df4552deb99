// Package vfsutil holds what the gateway's file stores (firmware, TUF
// repositories) need beyond pebble's vfs.FS to write files as the
// operating system's functions did: unique temporary names and permission
// bits.
package vfsutil

import (
	"io/fs"
	"os"
	"strconv"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// tempSeq numbers this process's temporary files.
var tempSeq atomic.Uint64

// TempSuffix names a temporary file uniquely, as os.CreateTemp did: vfs.FS
// has no exclusive create (Create replaces a file of the same name), so the
// name itself must not be another writer's, in this process or another.
func TempSuffix() string {
	return strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(tempSeq.Add(1), 10)
}

// SetMode gives a new file its permission bits. vfs.File has no Chmod: the
// operating system's files have one (they embed *os.File), a file of a
// wrapper of the operating system's FS is reached by name, and a file in
// memory has no permissions.
func SetMode(fsys vfs.FS, f vfs.File, name string, perm fs.FileMode) error {
	if c, ok := f.(interface{ Chmod(fs.FileMode) error }); ok {
		return c.Chmod(perm)
	}
	if vfs.Root(fsys) == vfs.Default {
		return os.Chmod(name, perm)
	}
	return nil
}

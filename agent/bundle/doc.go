// Package bundle owns the offline update bundle: one file that carries
// everything a device needs to update without a network (over UART, USB or
// a memory card), namely the TUF metadata of one tag's view exactly as the
// gateway serves it and the firmware images its targets name. It writes
// bundles (Create) and reads untrusted ones (Open), and an opened Bundle is
// the device TUF client's tufnano.Fetcher.
//
// # Format (version 1)
//
// A bundle is a POSIX USTAR archive, so `tar -tvf` lists it and `tar -xf`
// unpacks it, with these members:
//
//	manifest.json            always first: format, repository, tag, created
//	                         time, and every other member's name, length and
//	                         SHA-256 (type Manifest)
//	metadata/<name>          a metadata file under the name a device fetches
//	                         it by: N.root.json for each root version carried
//	                         (ascending), then timestamp.json, snapshot.json,
//	                         targets.json and any others, by name; the bytes
//	                         are the served bytes, which the signatures cover
//	firmware/<sha256>.bin    a firmware image, named by the lowercase hex
//	                         SHA-256 of its bytes, sorted by name
//
// The archive ends with two zero blocks; zero padding after them is
// allowed. Directory entries "metadata/" and "firmware/" are allowed and
// ignored, so an unpacked bundle can be packed again with
// `tar --format=ustar -cf b.tar manifest.json metadata firmware`. Nothing
// else is: no other names, no links, no pax or GNU extension headers, no
// member twice.
//
// # What it checks, and what it leaves to others
//
// Open refuses malformed containers, and only those: a truncated file, a
// header that is not USTAR, a name outside the three forms above (among
// them every name that would escape the extraction directory), a duplicate,
// a member or file over its Limits, a manifest of another format, and
// members that disagree with the manifest. It never interprets metadata:
// tampered, expired or rolled-back metadata is the TUF client's
// (agent/tufnano) to refuse when it refreshes through the Bundle, and the
// firmware's length and hash against targets.json are the agent's to check,
// exactly as for a download. A well-formed bundle of forged metadata opens
// fine and fails the refresh.
//
// It takes its input as an io.ReaderAt and a size and never touches the
// file system, the clock or the network; it imports only agent/tufnano and
// the standard library.
package bundle

// Package image owns the MCUboot image format as imgtool writes it and the
// bootloader reads it: the 32-byte header, the protected and unprotected TLV
// areas, the SHA-256 digest, the signatures (ECDSA-P256, Ed25519,
// RSA-PSS) with their KEYHASH key selection, the signing keys, and the
// trailer that imgtool's --pad and --confirm append (reference mcuboot.md §1,
// §3.3, §6).
//
// It knows nothing of flash, slots, swap strategies or the fleet: it reads
// images through an io.ReaderAt, builds them as byte slices, and is given its
// randomness (SignOptions.Rand, GenerateKey's rand). It must not import any
// other fleetsim package; the bootloader in devicemodel/mcuboot builds on it.
package image

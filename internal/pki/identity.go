package pki

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
)

// Identity is what the gateway needs from a verified client certificate.
type Identity struct {
	// UUID is the device UUID from the subject CN, in upper case; empty for
	// an admin certificate whose CN is no UUID.
	UUID string
	// Production is set when the subject carries businessCategory=production
	// (foundries.md §1.11); the device then sees production targets.
	Production bool
	// Admin is set when the subject's OU list contains AdminOU: an operator
	// of the admin API, not a device.
	Admin bool
	// PubKeySHA256 is the hex SHA-256 of the certificate's
	// SubjectPublicKeyInfo (DER). The gateway pins it on first contact and
	// refuses a later certificate for the same UUID with another key, as
	// the Foundries gateway does (foundries.md §3).
	PubKeySHA256 string
}

// IdentityOf reads the Identity of cert, which the TLS layer has already
// verified against the factory CA; IdentityOf checks no signature or
// validity itself. A lower-case UUID in the CN is reported in upper case.
//
// Errors: ErrBadIdentity when cert is nil, or its CN is not a UUID and it is
// no admin certificate.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	if cert == nil {
		return Identity{}, fmt.Errorf("%w: no certificate", ErrBadIdentity)
	}
	id := Identity{Admin: slices.Contains(cert.Subject.OrganizationalUnit, AdminOU)}
	uuid, ok := CanonicalUUID(cert.Subject.CommonName)
	if !ok && !id.Admin {
		return Identity{}, fmt.Errorf("%w: CN %q is not a device UUID", ErrBadIdentity, cert.Subject.CommonName)
	}
	if ok {
		id.UUID = uuid
	}
	// Subject.Names holds every attribute as parsed, including the ones
	// pkix.Name has no field for, such as businessCategory.
	for _, atv := range cert.Subject.Names {
		if atv.Type.Equal(oidBusinessCategory) {
			if v, isString := atv.Value.(string); isString && v == productionCategory {
				id.Production = true
			}
		}
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	id.PubKeySHA256 = hex.EncodeToString(sum[:])
	return id, nil
}

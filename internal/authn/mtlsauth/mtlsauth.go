// Package mtlsauth is the "mtls" authenticator: client certificates.
//
// The HTTPS listener requests a certificate without verifying it
// (tls.RequestClientCert), so that a certificate from an unknown CA gets the
// same uniform 401 as any other failed credential; this package verifies:
// the leaf is not a CA, its chain up to Options.Roots with the rest of the presented certificates
// as intermediates, the client-authentication extended key usage, validity
// at Now, and the CRLs of the issuing CAs. It then maps the leaf to a
// consumer by, in this order of precedence, its SHA-256 fingerprint, a URI
// SAN, a DNS SAN (case-insensitive), the subject common name.
//
// Verified leaves are cached by the SHA-256 of their DER, until the
// earliest NotAfter of the chain and at most CacheTTL (so a CRL changed by a
// reload is in force within that time even for a cache that outlived it).
// Failed verifications are not cached: they are recomputed each time.
package mtlsauth

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/breakwater/breakwater/internal/authn/authcache"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/breakwater/breakwater/internal/authn"
)

const (
	// DefaultCacheSize is the number of verified leaves kept by default.
	DefaultCacheSize = 10000
	// CacheTTL is the longest a verification result is reused.
	CacheTTL = 5 * time.Minute
	// MaxChainLen bounds the certificates a client may present (leaf
	// included); a longer chain is authn.Invalid without any verification.
	MaxChainLen = 8
	// Challenge is the WWW-Authenticate challenge of the authenticator.
	// There is no registered HTTP scheme for TLS client certificates (and
	// RFC 8120's "Mutual" is an unrelated password protocol), so the scheme
	// name only tells a human what is expected.
	Challenge = `ClientCertificate realm="breakwater"`
)

// Identity maps one certificate attribute to a consumer. Exactly one of the
// four match fields is set: SubjectCN (exact), SANDNS (any DNS SAN,
// case-insensitive), SANURI (any URI SAN, exact), SHA256 (fingerprint of the
// leaf's DER; see ParseFingerprint).
type Identity struct {
	SubjectCN, SANDNS, SANURI string
	SHA256                    [sha256.Size]byte
	Consumer                  *authn.Consumer
}

// Options configure an mtls authenticator.
type Options struct {
	// Roots are the CAs client certificates must chain to (LoadCAFile).
	// Required: a nil pool would mean the system roots.
	Roots *x509.CertPool
	// CRLs, optional, already parsed and checked (LoadCRLFile). A CRL
	// applies to a certificate only when its signature verifies against the
	// certificate's issuer in the verified chain.
	CRLs []*x509.RevocationList
	// Identities map certificates to consumers; a value may appear once.
	Identities []Identity
	// CacheSize bounds the verified leaves kept; 0: DefaultCacheSize.
	CacheSize int
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Authenticator is an mtls authenticator. It is safe for concurrent use.
type Authenticator struct {
	roots *x509.CertPool
	crls  map[string][]*crl // by raw issuer name
	byFP  map[[sha256.Size]byte]*authn.Consumer
	byURI map[string]*authn.Consumer
	byDNS map[string]*authn.Consumer // lower case
	byCN  map[string]*authn.Consumer
	cache *authcache.LRU[verdict]
	now   func() time.Time
}

type crl struct {
	list    *x509.RevocationList
	serials map[string]struct{} // big.Int.Text(16)
}

// verdict is the outcome for a leaf that verified: a consumer, or Unknown.
type verdict struct {
	consumer *authn.Consumer
	fail     *authn.Failure
}

// New validates o and builds the authenticator.
func New(o Options) (*Authenticator, error) {
	var errs []error
	if o.Roots == nil {
		errs = append(errs, errors.New("no client CA: tls.client_ca_file is required for the mtls authenticator"))
	}
	if o.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("cache size %d is negative", o.CacheSize))
	}
	a := &Authenticator{
		roots: o.Roots,
		crls:  make(map[string][]*crl),
		byFP:  make(map[[sha256.Size]byte]*authn.Consumer),
		byURI: make(map[string]*authn.Consumer),
		byDNS: make(map[string]*authn.Consumer),
		byCN:  make(map[string]*authn.Consumer),
		cache: authcache.New[verdict](cmp(o.CacheSize, DefaultCacheSize)),
		now:   o.Now,
	}
	if a.now == nil {
		a.now = time.Now
	}
	for i, l := range o.CRLs {
		if l == nil {
			errs = append(errs, fmt.Errorf("crl %d is nil", i))
			continue
		}
		c := &crl{list: l, serials: make(map[string]struct{}, len(l.RevokedCertificateEntries))}
		for _, e := range l.RevokedCertificateEntries {
			if e.SerialNumber != nil {
				c.serials[e.SerialNumber.Text(16)] = struct{}{}
			}
		}
		a.crls[string(l.RawIssuer)] = append(a.crls[string(l.RawIssuer)], c)
	}
	var zero [sha256.Size]byte
	for i, id := range o.Identities {
		n := 0
		for _, set := range []bool{id.SubjectCN != "", id.SANDNS != "", id.SANURI != "", id.SHA256 != zero} {
			if set {
				n++
			}
		}
		if n != 1 {
			errs = append(errs, fmt.Errorf("identity %d: want exactly one of subject_cn, san_dns, san_uri, sha256; have %d", i, n))
			continue
		}
		if id.Consumer == nil {
			errs = append(errs, fmt.Errorf("identity %d: no consumer", i))
			continue
		}
		var (
			prev *authn.Consumer
			what string
		)
		switch {
		case id.SHA256 != zero:
			prev, what = a.byFP[id.SHA256], "sha256"
			a.byFP[id.SHA256] = id.Consumer
		case id.SANURI != "":
			u, err := url.Parse(id.SANURI)
			if err != nil || u.Scheme == "" {
				errs = append(errs, fmt.Errorf("identity %d: san_uri %q is not an absolute URI", i, id.SANURI))
				continue
			}
			prev, what = a.byURI[u.String()], "san_uri "+id.SANURI
			a.byURI[u.String()] = id.Consumer
		case id.SANDNS != "":
			k := strings.ToLower(id.SANDNS)
			prev, what = a.byDNS[k], "san_dns "+id.SANDNS
			a.byDNS[k] = id.Consumer
		default:
			prev, what = a.byCN[id.SubjectCN], "subject_cn "+id.SubjectCN
			a.byCN[id.SubjectCN] = id.Consumer
		}
		if prev != nil {
			errs = append(errs, fmt.Errorf("identity %d: %s is claimed by consumers %q and %q", i, what, prev.ID, id.Consumer.ID))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("mtls authenticator: %w", errors.Join(errs...))
	}
	return a, nil
}

func cmp(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// Challenge implements authn.Authenticator; see the constant Challenge.
func (a *Authenticator) Challenge() string { return Challenge }

// Authenticate implements authn.Authenticator.
func (a *Authenticator) Authenticate(r *http.Request) (*authn.Consumer, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, authn.ErrNoCredential
	}
	certs := r.TLS.PeerCertificates
	leaf := certs[0]
	key := sha256.Sum256(leaf.Raw)
	now := a.now()
	if v, ok := a.cache.Get(key, now); ok {
		return v.out()
	}
	if len(certs) > MaxChainLen {
		return nil, &authn.Failure{Kind: authn.Invalid, Reason: fmt.Sprintf("client presented %d certificates, more than %d", len(certs), MaxChainLen)}
	}
	if leaf.IsCA {
		return nil, &authn.Failure{Kind: authn.Invalid, Reason: "client presented a CA certificate as its own"}
	}
	opts := x509.VerifyOptions{
		Roots:       a.roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(certs) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range certs[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	chains, err := leaf.Verify(opts)
	if err != nil {
		return nil, &authn.Failure{Kind: authn.Invalid, Reason: "client certificate: " + err.Error()}
	}
	if f := a.revoked(chains); f != nil {
		return nil, f
	}
	v := a.match(leaf, key)
	exp := now.Add(CacheTTL)
	for _, c := range chains[0] {
		if c.NotAfter.Before(exp) {
			exp = c.NotAfter
		}
	}
	a.cache.Put(key, v, exp)
	return v.out()
}

func (v verdict) out() (*authn.Consumer, error) {
	if v.fail != nil {
		return nil, v.fail
	}
	return v.consumer, nil
}

// revoked checks every certificate but the root of every verified chain
// against the CRLs of its issuer.
func (a *Authenticator) revoked(chains [][]*x509.Certificate) *authn.Failure {
	if len(a.crls) == 0 {
		return nil
	}
	for _, chain := range chains {
		for i := 0; i+1 < len(chain); i++ {
			c, issuer := chain[i], chain[i+1]
			for _, l := range a.crls[string(c.RawIssuer)] {
				if _, listed := l.serials[c.SerialNumber.Text(16)]; !listed {
					continue
				}
				// Same issuer name is not the same issuer: the CRL counts
				// only if the issuer in this chain signed it.
				if l.list.CheckSignatureFrom(issuer) != nil {
					continue
				}
				return &authn.Failure{Kind: authn.Revoked, Reason: fmt.Sprintf("certificate serial %s (%q) revoked by %q", c.SerialNumber.Text(16), c.Subject.CommonName, issuer.Subject.CommonName)}
			}
		}
	}
	return nil
}

// match maps a verified leaf to its consumer: fingerprint, then URI SAN,
// then DNS SAN, then subject CN.
func (a *Authenticator) match(leaf *x509.Certificate, fp [sha256.Size]byte) verdict {
	if c := a.byFP[fp]; c != nil {
		return verdict{consumer: c}
	}
	for _, u := range leaf.URIs {
		if c := a.byURI[u.String()]; c != nil {
			return verdict{consumer: c}
		}
	}
	for _, d := range leaf.DNSNames {
		if c := a.byDNS[strings.ToLower(d)]; c != nil {
			return verdict{consumer: c}
		}
	}
	if cn := leaf.Subject.CommonName; cn != "" {
		if c := a.byCN[cn]; c != nil {
			return verdict{consumer: c}
		}
	}
	return verdict{fail: &authn.Failure{Kind: authn.Unknown, Reason: fmt.Sprintf("client certificate %q (sha256 %x…) matches no consumer", truncate(leaf.Subject.CommonName, 64), fp[:4])}}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

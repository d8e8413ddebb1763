package tokens

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// keyFile is the on-disk form of the ring. It holds private keys: it is
// written 0600 and refused when group or others may read it.
type keyFile struct {
	Version int         `json:"version"`
	Keys    []keyRecord `json:"keys"`
}

type keyRecord struct {
	KID         string    `json:"kid"`
	Alg         string    `json:"alg"`
	CreatedAt   time.Time `json:"created_at"`
	ActivatedAt time.Time `json:"activated_at,omitzero"`
	RetiredAt   time.Time `json:"retired_at,omitzero"`
	// MaxTokenTTLSeconds is the longest lifetime of a token signed with the key.
	MaxTokenTTLSeconds int64  `json:"max_token_ttl_seconds"`
	PrivateKey         []byte `json:"private_key_pkcs8"` // base64 of PKCS #8 DER
}

const keyFileVersion = 1

// maxRecordTTLSeconds bounds max_token_ttl_seconds (ten years), far from
// overflowing a time.Duration.
const maxRecordTTLSeconds = 10 * 365 * 24 * 3600

func keyFilePath(dir string) string { return filepath.Join(dir, KeyFileName) }

func (r keyRecord) entry() (*entry, error) {
	key, err := newSigningKey(r.Alg, r.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", r.KID, err)
	}
	if key.kid != r.KID {
		return nil, fmt.Errorf("key %q: kid does not match the key's thumbprint %q", r.KID, key.kid)
	}
	if r.CreatedAt.IsZero() || r.MaxTokenTTLSeconds <= 0 || r.MaxTokenTTLSeconds > maxRecordTTLSeconds {
		return nil, fmt.Errorf("key %q: created_at and max_token_ttl_seconds (1 to %d) are required", r.KID, maxRecordTTLSeconds)
	}
	return &entry{
		key:       key,
		created:   r.CreatedAt,
		activated: r.ActivatedAt,
		retired:   r.RetiredAt,
		maxTTL:    time.Duration(r.MaxTokenTTLSeconds) * time.Second,
	}, nil
}

func ensureDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating key directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("key directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("key directory %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		log.Warn("key directory is writable by group or others; run chmod 700 on it", "dir", dir)
	}
	return nil
}

// readKeyFile reads and checks the key file. found is false when it does
// not exist. Errors name the file, never its content.
func readKeyFile(path string) (recs []keyRecord, data []byte, found bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("opening key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, true, fmt.Errorf("key file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, true, fmt.Errorf("key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, nil, true, fmt.Errorf("key file %s holds private keys but is accessible to group or others (mode %04o): run chmod 600 %s", path, perm, path)
	}
	data, err = io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, nil, true, fmt.Errorf("reading key file %s: %w", path, err)
	}
	recs, err = decodeKeyFile(data)
	if err != nil {
		return nil, nil, true, fmt.Errorf("key file %s %w", path, err)
	}
	return recs, data, true, nil
}

// decodeKeyFile parses the JSON form of the ring, from the key file or a
// KeyStore. It checks the size, the structure and the version; the records
// themselves are checked by keyRecord.entry. Errors start with a verb
// phrase ("is not valid JSON …") for the caller to prefix with the source,
// and never quote the content.
func decodeKeyFile(data []byte) ([]keyRecord, error) {
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("is larger than %d bytes", maxKeyFileSize)
	}
	var kf keyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		// The decoder's message may quote content: keep only its kind.
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("is not valid JSON (offset %d)", se.Offset)
		}
		return nil, errors.New("does not have the expected structure")
	}
	if kf.Version != keyFileVersion {
		return nil, fmt.Errorf("has version %d, want %d", kf.Version, keyFileVersion)
	}
	return kf.Keys, nil
}

// encodeLocked returns the JSON form of the entries. The keys are sorted by
// creation and kid, so two instances holding the same keys produce the
// same bytes: comparing encodings tells whether a copy is behind. Called
// with mu held.
func (k *KeyRing) encodeLocked() []byte {
	kf := keyFile{Version: keyFileVersion, Keys: make([]keyRecord, 0, len(k.entries))}
	for _, e := range k.entries {
		kf.Keys = append(kf.Keys, keyRecord{
			KID:                e.key.kid,
			Alg:                e.key.alg,
			CreatedAt:          e.created.UTC(),
			ActivatedAt:        e.activated.UTC(),
			RetiredAt:          e.retired.UTC(),
			MaxTokenTTLSeconds: int64((e.maxTTL + time.Second - 1) / time.Second),
			PrivateKey:         e.key.pkcs8,
		})
	}
	slices.SortFunc(kf.Keys, func(a, b keyRecord) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.KID, b.KID))
	})
	data, err := json.MarshalIndent(kf, "", "  ")
	if err != nil { // cannot happen: strings, times, numbers and bytes only
		panic(fmt.Sprintf("tokens: encoding key file: %v", err))
	}
	return data
}

// persist writes data to the key file atomically: a temporary file in the
// same directory (0600), fsync, rename, fsync of the directory. Called with
// mu held.
func (k *KeyRing) persist(data []byte) error {
	if err := writeFileAtomic(k.path, data); err != nil {
		return fmt.Errorf("writing key file %s: %w", k.path, err)
	}
	k.fileData = data
	return nil
}

func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp") // 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// mergeFileLocked merges the key file into the ring. It reports whether
// the file could be read. Called with mu held.
func (k *KeyRing) mergeFileLocked() (bool, error) {
	recs, data, _, err := readKeyFile(k.path)
	if err != nil {
		return false, err
	}
	k.fileData = data
	return true, k.mergeLocked(recs, "key file "+k.path)
}

// mergeLocked merges records into the ring: unknown keys are added, known
// ones take the earlier activation and retirement and the longer token
// lifetime. Invalid records are skipped and reported. Called with mu held.
func (k *KeyRing) mergeLocked(recs []keyRecord, source string) error {
	byKID := make(map[string]*entry, len(k.entries))
	for _, e := range k.entries {
		byKID[e.key.kid] = e
	}
	var errs []error
	for _, r := range recs {
		if e, ok := byKID[r.KID]; ok {
			mergeTime(&e.activated, r.ActivatedAt)
			mergeTime(&e.retired, r.RetiredAt)
			if ttl := time.Duration(min(r.MaxTokenTTLSeconds, maxRecordTTLSeconds)) * time.Second; ttl > e.maxTTL {
				e.maxTTL = ttl
			}
			continue
		}
		if len(k.entries) >= maxKeys {
			errs = append(errs, fmt.Errorf("%s: more than %d keys; key %q ignored", source, maxKeys, r.KID))
			continue
		}
		e, err := r.entry()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", source, err))
			continue
		}
		k.entries = append(k.entries, e)
		byKID[e.key.kid] = e
		k.log.Info("signing key learnt", "from", source, "kid", e.key.kid, "alg", e.key.alg)
	}
	return errors.Join(errs...)
}

// mergeTime sets *t to the earlier of two times, ignoring zero ones.
func mergeTime(t *time.Time, other time.Time) bool {
	if other.IsZero() || (!t.IsZero() && !other.Before(*t)) {
		return false
	}
	*t = other
	return true
}

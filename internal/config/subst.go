package config

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
)

// maxSecretFile bounds a file read through "file:PATH".
const maxSecretFile = 64 << 10

// filePrefix marks a secret read from a file.
const filePrefix = "file:"

// expandEnv replaces every ${NAME} in s by lookup(NAME). "$${" stands for a
// literal "${". A variable that is not set is an error, never "".
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	var missing []string
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", errors.New(`"${" is not closed by "}"; write "$${" for a literal "${"`)
		}
		name := s[i+2 : i+2+end]
		if !isEnvName(name) {
			return "", fmt.Errorf(`%q is not a variable name; use letters, digits and "_" in ${NAME}, or write "$${" for a literal "${"`, truncate(name))
		}
		if v, ok := lookup(name); ok {
			b.WriteString(v)
		} else if !slices.Contains(missing, name) {
			missing = append(missing, name)
		}
		s = s[i+3+end:]
	}
	switch len(missing) {
	case 0:
		return b.String(), nil
	case 1:
		return "", fmt.Errorf("environment variable %s is not set", missing[0])
	default:
		return "", fmt.Errorf("environment variables %s are not set", strings.Join(missing, ", "))
	}
}

func isEnvName(s string) bool {
	if s == "" || isDigit(s[0]) {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !(c == '_' || isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// readSecretFile reads a "file:PATH" secret: PATH is relative to dir, the
// file must be a regular file of at most maxSecretFile bytes, and one
// trailing newline is dropped.
func readSecretFile(dir, path string) (string, error) {
	if path == "" {
		return "", errors.New(`"file:" needs a path, as in file:secrets/admin-token.hash`)
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	f, err := openRegular(path)
	if err != nil {
		return "", fmt.Errorf("reading secret file %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("reading secret file %s: %w", path, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("secret file %s is larger than 64 KiB", path)
	}
	s := strings.TrimSuffix(string(b), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}

// truncate shortens s for a message.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}

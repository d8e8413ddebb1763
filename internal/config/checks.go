package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
)

// readable reports a file named at path that cannot be read.
func (v *validator) readable(path, file string) {
	if err := checkReadable(v.c.Resolve(file)); err != nil {
		v.errf(path, "%s", err)
	}
}

// checkReadable checks that p is a regular file that can be opened.
func checkReadable(p string) error {
	f, err := openRegular(p)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", p, err)
	}
	return f.Close()
}

// openRegular opens p for reading if it is a regular file. It opens without
// blocking and checks the file it opened (not the name, which could be
// swapped in between): a FIFO or device never hangs a load or a reload.
func openRegular(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, unwrapPath(err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// unwrapPath drops the operation and path that a *fs.PathError repeats.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// isHostname reports whether s is a DNS name: dot-separated labels of
// letters, digits and inner hyphens.
func isHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := range len(label) {
			if c := label[i]; !isAlnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

// isName reports whether s is 1 to 64 of letters, digits, ".", "_" and "-"
// (consumer ids, route names).
func isName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// isIdent reports whether s is 1 to 64 of lowercase letters, digits, "_"
// and "-" (authenticator names).
func isIdent(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !('a' <= c && c <= 'z' || isDigit(c) || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// isToken reports whether s is an HTTP token (RFC 9110 §5.6.2), the syntax
// of header names and methods.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// isScope reports whether s is an OAuth scope token (RFC 6749 §3.3).
func isScope(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if c := s[i]; c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c)
}

// checkHTTPSURL accepts an absolute https URL, or http on a loopback host.
func checkHTTPSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an absolute URL", truncate(s))
	}
	if u.User != nil {
		return errors.New("credentials in the URL leak into logs; remove them")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("must use https (http is allowed only on loopback addresses)")
	}
	return fmt.Errorf("%q: the scheme must be https", truncate(s))
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkTarget accepts an absolute http or https URL with a host and
// without credentials, query or fragment.
func checkTarget(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL", truncate(s))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%q: the scheme must be http or https", truncate(s))
	case u.Opaque != "" || u.Host == "":
		return nil, fmt.Errorf(`%q has no host; write it as "http://host:port"`, truncate(s))
	case u.User != nil:
		return nil, errors.New("credentials in a target URL leak into logs; remove them")
	case u.RawQuery != "" || u.ForceQuery:
		return nil, fmt.Errorf("%q has a query; a target is scheme, host, port and an optional base path", truncate(s))
	case u.Fragment != "" || strings.Contains(s, "#"):
		return nil, fmt.Errorf("%q has a fragment; remove it", truncate(s))
	}
	host := u.Hostname()
	if net.ParseIP(host) == nil && !isHostname(host) {
		return nil, fmt.Errorf("%q is neither an IP address nor a host name", truncate(host))
	}
	if p := u.Port(); p != "" {
		if err := checkHostPort(net.JoinHostPort(host, p)); err != nil || p == "0" {
			return nil, fmt.Errorf("%q: the port must be a number from 1 to 65535", truncate(s))
		}
	}
	return u, nil
}

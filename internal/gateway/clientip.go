package gateway

import (
	"net/http"
	"net/netip"
	"strings"
)

// trustedProxies decides whose X-Forwarded-For the gateway believes.
type trustedProxies []netip.Prefix

func parseTrusted(list []string) (trustedProxies, error) {
	out := make(trustedProxies, 0, len(list))
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, err
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (t trustedProxies) contains(a netip.Addr) bool {
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr parses the socket peer from RemoteAddr.
func peerAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("") // a zoned address is in no prefix
}

// clientIP returns the address the request is attributed to (for limits,
// bans and logs). From an untrusted peer it is the peer itself, whatever the
// client wrote in X-Forwarded-For; from a trusted proxy it is the rightmost
// address of the chain that is not itself a trusted proxy — the leftmost
// entries are client-controlled and never believed.
func (t trustedProxies) clientIP(peer netip.Addr, h http.Header) netip.Addr {
	if len(t) == 0 || !t.contains(peer) {
		return peer
	}
	vals := h.Values("X-Forwarded-For")
	client := peer
	for i := len(vals) - 1; i >= 0; i-- {
		v := vals[i]
		for v != "" {
			var part string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				part, v = v[j+1:], v[:j]
			} else {
				part, v = v, ""
			}
			a, err := netip.ParseAddr(strings.TrimSpace(part))
			if err != nil {
				return client // garbage in the chain: stop at the last address we could trust
			}
			a = a.Unmap()
			client = a
			if !t.contains(a) {
				return a
			}
		}
	}
	return client
}

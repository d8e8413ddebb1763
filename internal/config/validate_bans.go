package config

// MaxBanDuration bounds bans.duration.
const MaxBanDuration = Duration(30 * day)

// Ban keys: who bans.key counts and bans.
const (
	BanKeyIP       = "ip"
	BanKeyConsumer = "consumer"
)

// bans checks the bans section.
func (v *validator) bans() {
	b := v.c.Bans
	if b == nil {
		return
	}
	if b.AuthFailures == nil && b.ClientErrors == nil {
		v.errf("bans", `set auth_failures ("10/m") or client_errors ("100/m"), or remove the section`)
	}
	if b.AuthFailures != nil {
		v.rate("bans.auth_failures", *b.AuthFailures)
	}
	if b.ClientErrors != nil {
		v.rate("bans.client_errors", *b.ClientErrors)
	}
	if v.positive("bans.duration", int64(b.Duration)) && b.Duration > MaxBanDuration {
		v.errf("bans.duration", "%s: at most %s", b.Duration, MaxBanDuration)
	}
	if len(b.Key) == 0 {
		v.errf("bans.key", "required; ip, consumer or [ip, consumer]")
	}
	seen := map[string]bool{}
	for i, k := range b.Key {
		p := v.elemPath("bans.key", i)
		switch {
		case k != BanKeyIP && k != BanKeyConsumer:
			v.errf(p, "%q is not one of ip, consumer", truncate(k))
		case seen[k]:
			v.errf(p, "%q appears twice", k)
		}
		seen[k] = true
	}
}

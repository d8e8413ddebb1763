package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/breakwater/breakwater/internal/secret"
)

func runKeys(ctx context.Context, env Env, args []string) int {
	if len(args) == 0 || args[0] != "new" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(env.Stdout, `Usage: breakwater keys new [--prefix P]

Generates an API key with 256 bits of entropy (base62) and a recognisable
prefix, prints the key once, and the value to put in the config.
`)
			return 0
		}
		fmt.Fprintln(env.Stderr, "breakwater keys: want 'keys new'; see 'breakwater keys --help'")
		return 2
	}
	fs := newFlags(env, "keys new", "keys new [--prefix P]", `
Generates an API key: the prefix followed by 43 random base62 characters
(≥ 256 bits of entropy). The key is printed once — give it to the consumer —
together with the line for the consumer's credentials in the config: only
that sha256 digest is ever stored.`)
	prefix := fs.String("prefix", "bw_", "prefix that makes the key recognisable (lowercase, ends with _)")
	if code, done := parse(fs, env, args[1:]); done {
		return code
	}
	key, err := secret.NewKey(*prefix)
	if err != nil {
		fmt.Fprintf(env.Stderr, "breakwater keys new: --prefix: %v\n", err)
		return 2
	}
	fmt.Fprintf(env.Stdout, "key:    %s\nconfig: - api_key: \"%s\"\n", key, secret.SumString(key))
	return 0
}

func runSecret(ctx context.Context, env Env, args []string) int {
	if len(args) == 0 || args[0] != "hash" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(env.Stdout, "Usage: breakwater secret hash < secret\n\nReads a secret on stdin and prints its hash for the config.\n")
			return 0
		}
		fmt.Fprintln(env.Stderr, "breakwater secret: want 'secret hash'; see 'breakwater secret --help'")
		return 2
	}
	fs := newFlags(env, "secret hash", "secret hash < secret", `
Reads a secret on standard input (one line; a trailing newline is removed)
and prints its digest, "sha256:<hex>", for the config: client secrets
(oauth_client.secret_hash), the admin token (admin.token_hash), API keys.
Example:  printf %s "$ADMIN_TOKEN" | breakwater secret hash`)
	if code, done := parse(fs, env, args[1:]); done {
		return code
	}
	line, err := bufio.NewReader(io.LimitReader(env.Stdin, 64<<10)).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintf(env.Stderr, "breakwater secret hash: reading stdin: %v\n", err)
		return 1
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		io.WriteString(env.Stderr, "breakwater secret hash: stdin is empty; pipe the secret in, e.g. printf '%s' \"$TOKEN\" | breakwater secret hash\n")
		return 1
	}
	fmt.Fprintln(env.Stdout, secret.SumString(line))
	return 0
}

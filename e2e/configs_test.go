package e2e

// Config templates (text/template; see startGateway for the variables).

// headerSection is the common start of every config: listeners on the
// ports the test chose, self-signed TLS, the admin token, the api_key
// authenticator and two consumers.
const headerSection = `version: 1
server:
  https: "{{.HTTPS}}"
  admin: "{{.Admin}}"
  data_dir: "{{.Data}}"
  shutdown_timeout: 5s
tls:
  self_signed: true
admin:
  token_hash: "{{.AdminHash}}"
authenticators:
  keys: { type: api_key, header: X-API-Key }
consumers:
  - id: reader
    scopes: [read]
    credentials:
      - api_key: "{{.ReaderHash}}"
  - id: writer
    scopes: [read, write]
    credentials:
      - api_key: "{{.WriterHash}}"
`

// baseRoutes cover the request path: a public subtree, a key-protected
// subtree, a write route needing a scope, a GET-only route, a host-bound route.
const baseRoutes = `routes:
  - name: public
    path: /public/**
    upstream: { targets: ["{{.Up}}"], timeout: 5s }
    auth: none
  - name: private
    path: /private/**
    methods: [GET]
    upstream: { targets: ["{{.Up}}"], timeout: 5s }
    auth: [keys]
    scopes: [read]
  - name: write
    path: /write/**
    methods: [POST]
    upstream: { targets: ["{{.Up}}"], timeout: 5s }
    auth: [keys]
    scopes: [write]
  - name: onlyget
    path: /onlyget/**
    methods: [GET]
    upstream: { targets: ["{{.Up}}"], timeout: 5s }
    auth: none
  - name: hosted
    host: good
    path: /hosted/**
    upstream: { targets: ["{{.Up}}"], timeout: 5s }
    auth: none
`

const baseConfig = headerSection + baseRoutes

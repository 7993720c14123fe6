#!/usr/bin/env bash
# Regenerates the TLS test fixtures (committed; valid until 2125). Needs openssl.
# root (CA) -> intermediate (CA) -> leaf (localhost); plus a self-signed ECDSA P-256 certificate,
# which Godot's Crypto cannot make (it only generates RSA keys).
set -euo pipefail
cd "$(dirname "$0")"
days=36500
san="subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.crt -days $days \
  -subj "/CN=Test Root CA" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
openssl req -newkey rsa:2048 -nodes -keyout intermediate.key -out intermediate.csr -subj "/CN=Test Intermediate CA"
openssl x509 -req -in intermediate.csr -CA root.crt -CAkey root.key -CAcreateserial -out intermediate.crt -days $days \
  -extfile <(printf "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n")
openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj "/CN=localhost"
openssl x509 -req -in leaf.csr -CA intermediate.crt -CAkey intermediate.key -CAcreateserial -out leaf.crt -days $days \
  -extfile <(printf "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n%s\n" "$san")
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ecdsa.key -out ecdsa.crt -days $days \
  -subj "/CN=localhost" -addext "$san" -addext "basicConstraints=critical,CA:FALSE"
rm -f ./*.csr ./*.srl root.key intermediate.key

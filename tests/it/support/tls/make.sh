#!/usr/bin/env bash
# Makes the test certificate authority and the fake upstreams' certificate it signs (ECDSA
# P-256, valid until 2126, for 127.0.0.1 and localhost). Test material only: the key is public.
# Run from this directory to make them again; the tests read the .pem files beside it.
set -euo pipefail
openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -sha256 -days 36500 -subj "/CN=llmux test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out upstream.key
openssl req -new -key upstream.key -subj "/CN=llmux test upstream" -out upstream.csr
printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" > upstream.ext
openssl x509 -req -in upstream.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 \
    -days 36500 -extfile upstream.ext -out upstream.pem
rm -f ca.key ca.srl upstream.csr upstream.ext

## wss:// with certificates made by Godot (RSA) and fixtures made with openssl
## (tests/data/make-certs.sh: an intermediate CA chain, and ECDSA).
extends TestSuite

var _key: CryptoKey
var _cert: X509Certificate


## A self-signed RSA certificate for "localhost", made once per run.
func _self_signed() -> void:
	if _key == null:
		var crypto := Crypto.new()
		_key = crypto.generate_rsa(2048)
		_cert = crypto.generate_self_signed_certificate(_key, "CN=localhost,O=WebSocketServer tests,C=US")


func _tls_server(key: CryptoKey, cert: X509Certificate, chain: X509Certificate = null, more := Callable()) -> ServerHarness:
	return start_server(PackedStringArray(), func(s: WebSocketServer) -> void:
		s.bind_ip = "*"  # "localhost" may resolve to ::1
		s.private_key = key
		s.ssl_certificate = cert
		s.ca_chain = chain
		if more.is_valid():
			more.call(s))


func _wss_client(h: ServerHarness, trusted: X509Certificate, path := "/") -> WebSocketPeer:
	var c := WebSocketPeer.new()
	_owned.append(c)
	var options := TLSOptions.client(trusted) if trusted != null else TLSOptions.client()
	check_eq(c.connect_to_url("wss://localhost:%d%s" % [h.port, path], options), OK, "connect_to_url wss")
	await pump([h, c], func() -> bool:
		return c.get_ready_state() == WebSocketPeer.STATE_OPEN or c.get_ready_state() == WebSocketPeer.STATE_CLOSED)
	return c


func test_wss_echo_both_ways_and_disconnect_peer() -> void:
	_self_signed()
	var h := _tls_server(_key, _cert)
	var c := await _wss_client(h, _cert, "/secure?x=1")
	check_eq(c.get_ready_state(), WebSocketPeer.STATE_OPEN, "TLS client connected")
	var ok: bool = await pump([h, c], func() -> bool: return h.count("connected") == 1)
	check(ok, "client_connected")
	var id: int = h.ids("connected")[0]
	check_eq(h.events[0][3], "/secure?x=1", "resource_name over TLS")
	check(h.server.get_peer_address(id) in ["127.0.0.1", "::1"], "peer address over TLS")
	check(h.server.get_peer_port(id) > 0, "peer port over TLS")
	c.send_text("secret")
	var big := PackedByteArray()
	big.resize(50000)
	big.fill(7)
	c.put_packet(big)
	ok = await pump([h, c], func() -> bool: return h.count("data", id) == 2)
	check(ok, "two messages over TLS")
	var peer := h.server.get_peer(id)
	check_eq(peer.get_packet().get_string_from_utf8(), "secret", "text over TLS")
	check_eq(peer.get_packet(), big, "50 KB over TLS")
	peer.send_text("reply")
	check_eq(peer.put_packet(big), OK, "put_packet over TLS")
	ok = await pump([h, c], func() -> bool: return c.get_available_packet_count() == 2)
	check(ok, "replies arrive")
	check_eq(c.get_packet().get_string_from_utf8(), "reply", "reply text")
	check_eq(c.get_packet(), big, "reply binary")
	h.server.disconnect_peer(id, 4002, "tls kick")
	ok = await pump([h, c], func() -> bool:
		return c.get_ready_state() == WebSocketPeer.STATE_CLOSED and h.count("disconnected") == 1)
	check(ok, "closed")
	check_eq(c.get_close_code(), 4002, "code over TLS")
	check_eq(c.get_close_reason(), "tls kick", "reason over TLS")
	check_eq(h.events.back(), ["disconnected", id, true], "clean close over TLS")


func test_a_client_that_does_not_trust_the_certificate_fails() -> void:
	expect_error("TLS handshake error")
	_self_signed()
	var h := _tls_server(_key, _cert)
	var other := Crypto.new().generate_self_signed_certificate(Crypto.new().generate_rsa(2048), "CN=localhost")
	var untrusting := await _wss_client(h, other)
	check_eq(untrusting.get_ready_state(), WebSocketPeer.STATE_CLOSED, "untrusting client fails")
	var trusting := await _wss_client(h, _cert)
	check_eq(trusting.get_ready_state(), WebSocketPeer.STATE_OPEN, "trusting client succeeds")
	await pump([h, trusting], func() -> bool: return h.count("connected") == 1)
	check_eq(h.count("connected"), 1, "only the trusting client connected")


func test_plain_client_on_the_tls_port_is_dropped() -> void:
	_self_signed()
	var h := _tls_server(_key, _cert)
	var plain := WebSocketPeer.new()
	_owned.append(plain)
	plain.connect_to_url("ws://127.0.0.1:%d/" % h.port)
	var ok: bool = await pump([h, plain], func() -> bool: return plain.get_ready_state() == WebSocketPeer.STATE_CLOSED)
	check(ok, "ws:// client dropped")
	var tls := await _wss_client(h, _cert)
	check_eq(tls.get_ready_state(), WebSocketPeer.STATE_OPEN, "a TLS client is unaffected")
	await pump([h, tls], func() -> bool: return h.count("connected") == 1)
	check_eq(h.count("connected"), 1, "one client_connected, for the TLS client")


func test_ca_chain_completes_the_chain_to_the_root() -> void:
	expect_error("TLS handshake error")
	var leaf: X509Certificate = load("res://tests/data/leaf.crt")
	var key: CryptoKey = load("res://tests/data/leaf.key")
	var intermediate: X509Certificate = load("res://tests/data/intermediate.crt")
	var root: X509Certificate = load("res://tests/data/root.crt")
	var without := _tls_server(key, leaf)
	var c := await _wss_client(without, root)
	check_eq(c.get_ready_state(), WebSocketPeer.STATE_CLOSED, "without ca_chain the root alone does not verify the leaf")
	var h := _tls_server(key, leaf, intermediate)
	c = await _wss_client(h, root)
	check_eq(c.get_ready_state(), WebSocketPeer.STATE_OPEN, "with ca_chain a client trusting only the root connects")
	c.send_text("via chain")
	var ok: bool = await pump([h, c], func() -> bool: return h.count("data") == 1)
	check(ok, "message via chain")


func test_ecdsa_certificate() -> void:
	var cert: X509Certificate = load("res://tests/data/ecdsa.crt")
	var key: CryptoKey = load("res://tests/data/ecdsa.key")
	var h := _tls_server(key, cert)
	var c := await _wss_client(h, cert)
	check_eq(c.get_ready_state(), WebSocketPeer.STATE_OPEN, "ECDSA server certificate")


func test_stalled_tls_handshake_is_dropped_without_harm() -> void:
	_self_signed()
	var h := _tls_server(_key, _cert, null, func(s: WebSocketServer) -> void: s.handshake_timeout = 0.5)
	var t := await raw_tcp(h)
	t.put_data(PackedByteArray([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))  # the start of a ClientHello
	var c := await _wss_client(h, _cert)
	check_eq(c.get_ready_state(), WebSocketPeer.STATE_OPEN, "another client connects meanwhile")
	var dropped: bool = await pump([h, t, c], func() -> bool: return t.get_status() != StreamPeerTCP.STATUS_CONNECTED, 3.0)
	check(dropped, "the stalled client is dropped after handshake_timeout")
	check_eq(c.get_ready_state(), WebSocketPeer.STATE_OPEN, "the good client stays")
	check_eq(h.count("connected"), 1, "one client_connected")


func test_limits_hold_over_tls() -> void:
	_self_signed()
	var h := _tls_server(_key, _cert, null, func(s: WebSocketServer) -> void: s.inbound_buffer_size = 1000)
	var c := await _wss_client(h, _cert)
	var data := PackedByteArray()
	data.resize(1001)
	c.put_packet(data)
	var ok: bool = await pump([h, c], func() -> bool:
		return c.get_ready_state() == WebSocketPeer.STATE_CLOSED and h.count("disconnected") == 1)
	check(ok, "closed")
	check_eq(c.get_close_code(), 1009, "1009 over TLS")
	check_eq(h.events.back()[2], true, "the client's answer was read: a clean close")


func test_bad_tls_material_is_refused() -> void:
	expect_error("WebSocketServer: private_key does not match ssl_certificate")
	expect_error("WebSocketServer: ssl_certificate is set but private_key is not; wss:// needs both")
	expect_error("WebSocketServer: private_key is set but ssl_certificate is not; wss:// needs both")
	expect_error("WebSocketServer: ssl_certificate holds no certificate")
	expect_error("WebSocketServer: private_key holds no private key (it is empty or public only)")
	expect_error("WebSocketServer: private_key is not a supported key (RSA of 2048 bits or more")
	expect_error("WebSocketServer: ca_chain is set, but private_key and ssl_certificate are not")
	_self_signed()
	var s := new_server()
	s.private_key = Crypto.new().generate_rsa(2048)
	s.ssl_certificate = _cert
	check_eq(s.listen(0), ERR_INVALID_PARAMETER, "key does not match certificate")
	check(not s.is_listening(), "not listening after a refused key")
	s.private_key = null
	check_eq(s.listen(0), ERR_INVALID_PARAMETER, "certificate without key")
	s.ssl_certificate = null
	s.private_key = _key
	check_eq(s.listen(0), ERR_INVALID_PARAMETER, "key without certificate")
	s.ssl_certificate = X509Certificate.new()
	check_eq(s.listen(0), ERR_INVALID_PARAMETER, "empty certificate")
	s.ssl_certificate = _cert
	s.private_key = CryptoKey.new()
	check_eq(s.listen(0), ERR_INVALID_PARAMETER, "empty key")
	var public_only := CryptoKey.new()
	public_only.load_from_string(_key.save_to_string(true), true)
	s.private_key = public_only
	check_eq(s.listen(0), ERR_INVALID_PARAMETER, "public key only")
	var small := Crypto.new().generate_rsa(1024)
	s.private_key = small
	s.ssl_certificate = Crypto.new().generate_self_signed_certificate(small, "CN=localhost")
	check_eq(s.listen(0), ERR_INVALID_PARAMETER, "a key rustls does not support (RSA 1024)")
	s.private_key = null
	s.ssl_certificate = null
	s.ca_chain = _cert
	check_eq(s.listen(0), ERR_INVALID_PARAMETER, "ca_chain alone")
	check(not s.is_listening(), "never listening")

"""The upstream transport over TLS (every real provider's path): a loopback HTTPS server with a certificate from a
CA made for the test. The client trusts that CA only where a test says so; the certificate must name the host the
URL names."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from providers.http import UpstreamClient, UpstreamUnreachable


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(
    subject: str, issuer: str, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey, *, ca: bool
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        names: list[x509.GeneralName] = [x509.DNSName(subject)]
        if subject == "localhost":
            names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


class TlsServer:
    """HTTPS on 127.0.0.1 answering every request `200 ok`, with a leaf certificate for `server_name`."""

    def __init__(self, directory: Path, server_name: str) -> None:
        ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        self.ca_file = directory / "ca.pem"
        self.ca_file.write_bytes(_pem(_certificate("Portico test CA", "Portico test CA", ca_key, ca_key, ca=True)))
        chain = directory / "leaf.pem"
        leaf = _certificate(server_name, "Portico test CA", leaf_key, ca_key, ca=False)
        key = leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        chain.write_bytes(_pem(leaf) + key)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(chain)
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> TlsServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    def trusting_client(self) -> UpstreamClient:
        return UpstreamClient(tls=ssl.create_default_context(cafile=str(self.ca_file)))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def localhost_server(tmp_path: Path) -> AsyncIterator[TlsServer]:
    async with TlsServer(tmp_path, "localhost") as server:
        yield server


async def test_https_is_verified_and_kept_alive(localhost_server: TlsServer) -> None:
    async with localhost_server.trusting_client() as upstream:
        for _ in range(3):
            url = f"https://127.0.0.1:{localhost_server.port}/v1/models"
            async with upstream.request("GET", url, timeout=5, trusted=True) as response:
                assert (response.status, await response.read()) == (200, b"ok")
    assert localhost_server.connections == 1


async def test_a_certificate_from_an_unknown_authority_is_refused(localhost_server: TlsServer) -> None:
    async with UpstreamClient() as upstream:  # the system's trust store: the test CA is not in it
        with pytest.raises(UpstreamUnreachable) as refused:
            url = f"https://127.0.0.1:{localhost_server.port}/v1/models"
            async with upstream.request("GET", url, timeout=5, trusted=True):
                pass
    assert "certificate verify failed" in refused.value.message


async def test_a_certificate_for_another_name_is_refused(tmp_path: Path) -> None:
    async with TlsServer(tmp_path, "api.other.example") as server, server.trusting_client() as upstream:
        with pytest.raises(UpstreamUnreachable) as refused:
            async with upstream.request("GET", f"https://127.0.0.1:{server.port}/", timeout=5, trusted=True):
                pass
    assert "certificate verify failed" in refused.value.message and "127.0.0.1" in refused.value.message

"""A small FTP-over-TLS server on loopback for the ftp step tests, on the standard library's ssl.

pyftpdlib (the plain-FTP server these tests also start) does TLS only through pyOpenSSL, which the
project does not install; this server speaks just what `ftplib.FTP_TLS` sends: AUTH TLS, USER,
PASS, PBSZ, PROT, TYPE, PASV, STOR, RETR, QUIT, with TLS on the control and data connections.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def write_self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost (its own CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rustchain test ftps")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "ftps-cert.pem", folder / "ftps-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@dataclass
class FtpsServer:
    """The files stored (by name) and the port the server listens on."""

    port: int = 0
    files: dict[str, bytes] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)


class _Session:
    def __init__(
        self,
        server: FtpsServer,
        tls: ssl.SSLContext,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        users: dict[str, str],
    ) -> None:
        self.server, self.tls, self.reader, self.writer, self.users = (
            server,
            tls,
            reader,
            writer,
            users,
        )
        self.user = ""
        self.logged_in = False
        self.private = False
        self.data: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] | None = None

    async def reply(self, line: str) -> None:
        self.writer.write(line.encode() + b"\r\n")
        await self.writer.drain()

    async def run(self) -> None:
        await self.reply("220 rustchain test ftps")
        while line := await self.reader.readline():
            verb, _, argument = line.decode().rstrip("\r\n").partition(" ")
            self.server.commands.append(verb.upper())
            if not await self.handle(verb.upper(), argument):
                break
        self.writer.close()

    async def handle(self, verb: str, argument: str) -> bool:
        if verb == "AUTH":
            await self.reply("234 AUTH TLS ok")
            await self.writer.start_tls(self.tls)
        elif verb == "USER":
            self.user = argument
            await self.reply("331 password please")
        elif verb == "PASS":
            self.logged_in = self.users.get(self.user) == argument
            await self.reply("230 logged in" if self.logged_in else "530 login incorrect")
        elif verb in ("PBSZ", "TYPE"):
            await self.reply("200 ok")
        elif verb == "PROT":
            self.private = argument == "P"
            await self.reply("200 ok")
        elif verb == "PASV":
            await self.passive()
        elif verb in ("STOR", "RETR") and self.logged_in:
            await self.transfer(verb, argument)
        elif verb == "QUIT":
            await self.reply("221 bye")
            return False
        else:
            await self.reply("530 not logged in" if not self.logged_in else "502 not here")
        return True

    async def passive(self) -> None:
        loop = asyncio.get_running_loop()
        self.data = loop.create_future()
        ready = self.data

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if not ready.done():
                ready.set_result((reader, writer))

        listener = await asyncio.start_server(
            accept, "127.0.0.1", 0, ssl=self.tls if self.private else None
        )
        port = listener.sockets[0].getsockname()[1]
        ready.add_done_callback(lambda _: listener.close())
        await self.reply(f"227 Entering Passive Mode (127,0,0,1,{port >> 8},{port & 255})")

    async def transfer(self, verb: str, name: str) -> None:
        if self.data is None:
            await self.reply("425 use PASV first")
            return
        if verb == "RETR" and name not in self.server.files:
            await self.reply("550 no such file")
            return
        await self.reply("150 opening data connection")
        reader, writer = await self.data
        self.data = None
        if verb == "STOR":
            self.server.files[name] = await reader.read()
        else:
            writer.write(self.server.files[name])
            await writer.drain()
        writer.close()
        with suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
        await self.reply("226 transfer complete")


@asynccontextmanager
async def ftps_server(
    cert_file: Path, key_file: Path, users: dict[str, str]
) -> AsyncIterator[FtpsServer]:
    """The server, listening on 127.0.0.1 until the block ends."""
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    state = FtpsServer()

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _Session(state, tls, reader, writer, users).run()

    listener = await asyncio.start_server(session, "127.0.0.1", 0)
    state.port = listener.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        listener.close()

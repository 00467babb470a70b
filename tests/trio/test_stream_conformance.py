"""TcpStream against trio's own stream contract (trio.testing.check_half_closeable_stream), over
two real Stacks joined by an in-memory link, with virtual time."""
import trio
import trio.testing

from tuntcp.shell import TcpStream


async def clog(s: TcpStream) -> None:
    """Fill the peer's receive window and our send buffer until send_all would block."""
    while True:
        space = s.conn.send_space()
        if space:
            await s.send_all(b"c" * space)
            continue
        await trio.sleep(1)  # let delayed ACKs and buffer autotuning settle (virtual time)
        if not s.conn.send_space():
            return


async def test_check_half_closeable_stream(memlab, autojump_clock):
    await trio.testing.check_half_closeable_stream(memlab.connected_pair, None)


async def test_check_half_closeable_stream_clogged(memlab, autojump_clock):
    async def clogged_maker():
        c, s = await memlab.connected_pair()
        await clog(c)   # trio also uses the pair flipped, so clog both directions
        await clog(s)
        return c, s
    await trio.testing.check_half_closeable_stream(memlab.connected_pair, clogged_maker)

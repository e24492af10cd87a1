from tests.factories import authorization_message, make_world


async def test_authorize_then_complete(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    message = authorization_message(world.phone, clock(), amount_minor=300_000)
    reply = await terminal.authorize(**message)
    assert reply.status_code == 200, reply.body
    assert reply.body["approved"] is True
    assert reply.body["response_code"] == "00"
    done = await terminal.complete(message["terminal_transaction_id"], amount_minor=250_538,
                                   volume_ml=38_250, product="diesel")
    assert done.status_code == 200, done.body
    assert done.body["released_amount_minor"] == 300_000 - 250_538

// The topic ("room") scenarios' shape, shared by every server: each
// connection joins the measured room and OWN_ROOMS rooms of its own, so the
// process holds about ten thousand rooms at 1,000 connections and a publish
// has to find its room among them. Servers without topics keep their rooms as
// their users do: a Map of room name to a Set of connections.

export const ROOM = 'bench'
export const OWN_ROOMS = 10
// Every server: app.websocket.publish (ours) or a loop over the room's Set (ws, @fastify/websocket).
export const PUBLISH_ROUTE = '/publish'
// Ours: the same room kept by the route in a Map, sent with app.websocket.broadcast({ clients }); the others serve it as PUBLISH_ROUTE.
export const ROOM_BROADCAST_ROUTE = '/room-broadcast'
// Cross-instance scenario: every connection joins ROOM, on one of several processes sharing a Redis.
export const INSTANCE_ROUTE = '/room'

/** Rooms in a process for `connections` connections of these scenarios. */
export const roomsHeld = (connections) => connections * OWN_ROOMS + 1

let joined = 0

/** The rooms the next connection joins: ROOM first, then its own. */
export function roomsForNextConnection () {
  const n = joined++
  const names = [ROOM]
  for (let i = 0; i < OWN_ROOMS; i++) names.push(`own:${n}:${i}`)
  return names
}

/** Rooms as users of a WebSocket library without topics write them. */
export class Rooms {
  #rooms = new Map()

  join (client, names) {
    for (const name of names) {
      let members = this.#rooms.get(name)
      if (members === undefined) {
        members = new Set()
        this.#rooms.set(name, members)
      }
      members.add(client)
    }
  }

  leave (client, names) {
    for (const name of names) {
      const members = this.#rooms.get(name)
      if (members === undefined) continue
      members.delete(client)
      if (members.size === 0) this.#rooms.delete(name)
    }
  }

  /** The room's members; an empty set for a room nobody is in. */
  members (name) {
    return this.#rooms.get(name) ?? EMPTY
  }
}

const EMPTY = new Set()

/**
 * The part of simple-peer 9 that peers.ts uses, typed for the DOM-only client. (The community
 * typings, @types/simple-peer, pull in Node's types, which this workspace must not see.)
 *
 * We import `simple-peer/simplepeer.min.js`, the browser build the package ships: it bundles
 * simple-peer's Node shims (Buffer, process.nextTick, events, streams), so neither Vite nor the
 * e2e esbuild build needs Node polyfills or a `global` define.
 */
declare module 'simple-peer/simplepeer.min.js' {
  export interface SimplePeerOptions {
    initiator?: boolean;
    trickle?: boolean;
    config?: RTCConfiguration;
    channelConfig?: RTCDataChannelInit;
    /** Custom WebRTC classes; peers.ts passes the browser's, subclassed to see the connection. */
    wrtc?: {
      RTCPeerConnection: typeof RTCPeerConnection;
      RTCSessionDescription: typeof RTCSessionDescription;
      RTCIceCandidate: typeof RTCIceCandidate;
    };
  }

  /** What a `signal` event carries: an offer or answer, or one trickled candidate. */
  export type SimplePeerSignal =
    | { type: 'offer' | 'answer'; sdp: string }
    | {
        type: 'candidate';
        candidate: { candidate: string; sdpMid?: string | null; sdpMLineIndex?: number | null };
      }
    | { type: 'renegotiate' | 'transceiverRequest' };

  export default class SimplePeer {
    constructor(opts?: SimplePeerOptions);
    readonly connected: boolean;
    readonly destroyed: boolean;
    /** The data channel's bufferedAmount. */
    readonly bufferSize: number;
    signal(data: unknown): void;
    send(data: ArrayBufferView | ArrayBuffer): void;
    destroy(err?: Error): void;
    on(event: 'signal', listener: (data: SimplePeerSignal) => void): this;
    on(event: 'connect' | 'close', listener: () => void): this;
    /** Each message, as a Buffer (a Uint8Array) over the received ArrayBuffer. */
    on(event: 'data', listener: (data: Uint8Array) => void): this;
    on(event: 'error', listener: (err: Error & { code?: string }) => void): this;
  }
}

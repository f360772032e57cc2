import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config';

/*
 * The ports an `image_url` may name (IMAGE_URL_PORTS, default 443). The rule
 * runs inside a class-validator decorator, which has no dependency injection,
 * so the setting lives here at module level: 443 until the app starts, then
 * what the configuration says (ImageUrlPortsSetting, below). One process runs
 * one app with one configuration; in tests the app started last wins.
 */

const DEFAULT_PORTS: readonly number[] = Object.freeze([443]);

let allowed: readonly number[] = DEFAULT_PORTS;

/** The ports an image URL may name now. */
export function allowedImageUrlPorts(): readonly number[] {
  return allowed;
}

/** Replaces the allowed ports (an empty list falls back to 443: no port at all would refuse every URL). */
export function setAllowedImageUrlPorts(ports: readonly number[]): void {
  allowed = ports.length > 0 ? Object.freeze([...ports]) : DEFAULT_PORTS;
}

/** Copies `config.imageUrlPorts` into the rule when the app is built, before it serves a request. */
@Injectable()
export class ImageUrlPortsSetting {
  constructor(config: AppConfig) {
    setAllowedImageUrlPorts(config.imageUrlPorts);
  }
}

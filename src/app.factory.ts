import { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Logger } from 'nestjs-pino';
import { AppModule, AppModuleOptions } from './app.module';
import { trustProxySetting } from './common/client-address';
import { ProblemFilter } from './common/problem.filter';
import { Draining } from './common/draining';
import { addBodyExamples, OpenApiDocument } from './common/openapi-examples';
import { securityHeaders } from './common/security-headers';
import { createValidationPipe } from './common/validation';
import { AppConfig } from './config/app-config';

export function buildOpenApiDocument(app: INestApplication) {
  const config = new DocumentBuilder()
    .setTitle('idgate')
    .setDescription(
      'Compliance backend for Chinese resident ID card verification. Authenticate with an API key, ' +
        'as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Every operation states the roles it admits. ' +
        'Errors on `/v1` are RFC 9457 `application/problem+json`.',
    )
    .setVersion('1')
    .addBearerAuth(
      { type: 'http', scheme: 'bearer', description: 'An idgate API key (idg_live_… / idg_test_…).' },
      'bearer',
    )
    .addApiKey(
      { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'The same API key, in a header.' },
      'api-key',
    )
    .build();
  const document = SwaggerModule.createDocument(app, config);
  addBodyExamples(document as unknown as OpenApiDocument);
  return document;
}

/** Builds the Nest application exactly as `npm start` runs it (tests use this too). */
export interface CreateAppOptions extends AppModuleOptions {
  /** The server's shutdown switch (npm start): see Draining. */
  draining?: Draining;
}

export async function createApp(config: AppConfig, options: CreateAppOptions = {}): Promise<INestApplication> {
  const trustProxy = trustProxySetting(config.http.trustProxy); // a bad TRUST_PROXY stops the start here
  const app = await NestFactory.create(AppModule.forRoot(config, options), {
    bodyParser: false,
    bufferLogs: true,
  });
  app.useLogger(app.get(Logger));
  app.flushLogs();
  const http = app.getHttpAdapter().getInstance() as { disable(s: string): void; set(k: string, v: unknown): void };
  http.disable('x-powered-by');
  // No ETag on API answers: hashing every JSON body costs CPU on the hot path, and a hash of a
  // body holding personal data is not worth caching (the console's static assets set their own).
  http.set('etag', false);
  http.set('query parser', 'simple');
  // X-Forwarded-For is believed from the proxies TRUST_PROXY names only (never `true`: anyone could
  // then choose the address the audit trail and the abuse limits see).
  http.set('trust proxy', trustProxy);
  app.use(securityHeaders());
  if (options.draining) {
    app.use(options.draining.closeAfterResponse());
    app.use(options.draining.middleware());
  }
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new ProblemFilter());

  SwaggerModule.setup('docs', app, () => buildOpenApiDocument(app), {
    jsonDocumentUrl: 'docs-json',
    // No validator badge: it would load from validator.swagger.io, which the /docs CSP does not allow.
    swaggerOptions: { persistAuthorization: false, validatorUrl: null },
  });
  return app;
}
